// Which cores each worker and each of its inter-op teams get, and where its memory goes,
// decided from the machine's topology (common/topology.h) rather than from a flat list.
//
// Threads go on physical cores first. A split of P workers x I teams x T threads needs
// W = I x T threads per worker:
//  - --smt avoid (default): each thread gets a physical core (its first hardware thread) while
//    P x W fits in the physical cores; beyond that, SMT siblings are used (said in a note), and
//    beyond every hardware thread the split is oversubscribed: workers wrap around and share.
//  - --smt use: hardware threads are the unit; a worker takes both threads of a core before
//    the next core.
// Where the workers go:
//  - numa (default): workers are balanced over the NUMA nodes, each inside one node, and
//    inside a node over its L3 domains, each inside one L3 where it fits; a worker larger than
//    a node (or a split whose workers do not fit whole) straddles, and a note says which.
//  - compact: worker r takes the next W units in topology order (fewest nodes and sockets).
//  - spread: the workers are spaced evenly over the units in topology order.
// Memory: a worker inside one node of a machine with several is bound to that node (as
// `numactl -m` would), one that straddles interleaves over its nodes, and on a machine with
// one node the kernel's first touch already keeps memory local.
#pragma once
#include <string>
#include <vector>

#include "core_set.h"
#include "topology.h"

namespace ts {

enum class PlacementPolicy { kNuma, kCompact, kSpread };
enum class SmtPolicy { kAvoid, kUse };

// "numa" / "compact" / "spread", "avoid" / "use": throw std::invalid_argument naming the
// choices.
PlacementPolicy parse_placement(const std::string& name);
SmtPolicy parse_smt(const std::string& name);
const char* placement_name(PlacementPolicy p);
const char* smt_name(SmtPolicy s);

struct WorkerPlace {
  CoreSet cores;                // team 0's cores, then team 1's, ...: the OpenMP places in order
  std::vector<CoreSet> teams;   // I sets of T cores
  std::vector<int> numa_nodes;  // ascending
  std::vector<int> packages;    // ascending
  std::vector<int> l3_domains;  // ascending
  bool shares_physical_cores = false;  // two of its threads on hardware threads of one core
  // What the worker applies before it allocates: "" (nothing: first touch), "bind:N" or
  // "interleave:N,M".
  std::string memory;
};

struct PlacementPlan {
  std::vector<WorkerPlace> workers;
  bool oversubscribed = false;  // more threads than hardware threads: workers share
  bool uses_siblings = false;   // threads on SMT siblings of cores already in use
  std::vector<std::string> notes;  // one sentence each: straddles, siblings, oversubscription
};

// How many threads a split may place before it uses SMT siblings (--smt avoid: physical
// cores) or oversubscribes (--smt use: hardware threads). The default P x I x T and the
// sweep's plan split this number.
int placeable_threads(const Topology& t, SmtPolicy smt);
// Those threads, in topology order: the first hardware thread of every core (avoid) or every
// hardware thread (use).
CoreSet placement_units(const Topology& t, SmtPolicy smt);

// Throws std::invalid_argument for P, I or T below 1 or an empty topology.
PlacementPlan place(const Topology& t, int procs, int inter_op, int threads, PlacementPolicy policy,
                    SmtPolicy smt);

// "cores 0-7 (node 0, package 0, L3 0), memory bound to node 0": one line for the run's
// first lines and the report.
std::string describe(const WorkerPlace& w);
// "first touch", "bound to node 1", "interleaved over nodes 0,1".
std::string describe_memory(const std::string& memory);

}  // namespace ts
