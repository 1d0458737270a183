// The machine as hwloc sees it: packages (sockets), NUMA nodes, L3 domains, physical cores and
// their hardware threads (PUs), restricted to the cores a run may use.
//
// Placement (common/placement.h) works on this description only, so it can be tested on
// machines we do not have: hwloc builds the same description from a synthetic topology
// ("pack:2 numa:2 l3:2 core:8 pu:2") or from an XML file written by `lstopo file.xml` on the
// real machine.
#pragma once
#include <string>
#include <vector>

#include "core_set.h"

namespace ts {

// One hardware thread. Domains are numbered as hwloc numbers them (logical indices, in the
// topology's order), except NUMA nodes, which keep the kernel's numbers (numactl's, and
// what set_mempolicy takes).
struct Pu {
  int os = 0;       // Linux CPU number: what sched_setaffinity, taskset and --cores take
  int core = 0;     // physical core
  int smt = 0;      // its position among its core's hardware threads (0: the first)
  int l3 = 0;       // L3 cache domain (the package when the machine reports no L3)
  int numa = 0;     // NUMA node (kernel number)
  int package = 0;  // socket
};

class Topology {
 public:
  // This machine (hwloc's native discovery), all of its PUs.
  static Topology of_this_machine();
  // A hwloc synthetic description, e.g. "pack:2 numa:2 l3:2 core:8 pu:2"; OS numbers may be
  // given as hwloc allows ("pu:2(indexes=2*16:1*2)" numbers siblings i and i+16, as Linux
  // does on most servers). Throws std::invalid_argument naming the description.
  static Topology synthetic(const std::string& description);
  // An XML file exported by hwloc (`lstopo machine.xml`). Throws std::invalid_argument.
  static Topology from_xml(const std::string& path);
  // --topology's value: an XML file when it names one (or ends in .xml), else a synthetic
  // description.
  static Topology load(const std::string& spec);

  // The PUs named by `cores` (the order of `cores` does not matter). Throws
  // std::invalid_argument naming a core this topology does not have.
  Topology restricted_to(const CoreSet& cores) const;

  // In the topology's order: package by package, node by node, L3 by L3, core by core.
  const std::vector<Pu>& pus() const { return pus_; }
  // The PU with this OS number, or null.
  const Pu* find(int os) const;
  CoreSet all_cores() const;  // every PU's OS number, in topology order

  int packages() const;
  int numa_nodes() const;
  int l3_domains() const;
  int cores() const;             // physical cores with at least one PU here
  int max_threads_per_core() const;
  // The NUMA nodes (ascending) that the cores of `cores` belong to.
  std::vector<int> numa_nodes_of(const CoreSet& cores) const;

  // "1 package, 1 NUMA node, 1 L3 domain, 2 cores, 2 PUs (no SMT)".
  std::string summary() const;
  // Where the description came from: "this machine (hwloc 2.9.0)", "synthetic 'pack:2 ...'",
  // "XML file m.xml".
  const std::string& source() const { return source_; }

 private:
  std::vector<Pu> pus_;
  std::string source_;
};

}  // namespace ts
