#include "topology.h"

#include <hwloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

namespace ts {

namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using HwlocTopology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

std::string hwloc_version() {
#ifdef THREADSPLIT_HWLOC_VERSION
  return THREADSPLIT_HWLOC_VERSION;  // the library's (pkg-config); its API version lags it
#else
  const unsigned v = hwloc_get_api_version();
  return "API " + std::to_string(v >> 16) + "." + std::to_string((v >> 8) & 0xff);
#endif
}

HwlocTopology start() {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) throw std::runtime_error("hwloc could not start a topology");
  return HwlocTopology(t);
}

void finish(const HwlocTopology& t, const std::string& what) {
  if (hwloc_topology_load(t.get()) != 0)
    throw std::invalid_argument("hwloc could not load " + what + ": " + std::strerror(errno));
}

int logical_ancestor(hwloc_topology_t t, hwloc_obj_type_t type, hwloc_obj_t pu) {
  hwloc_obj_t a = hwloc_get_ancestor_obj_by_type(t, type, pu);
  return a ? int(a->logical_index) : -1;
}

std::vector<Pu> read_pus(hwloc_topology_t t) {
  std::vector<hwloc_obj_t> nodes;
  for (hwloc_obj_t n = nullptr; (n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n));)
    nodes.push_back(n);
  std::vector<Pu> pus;
  std::map<int, int> threads_of_core;
  int lone_cores = 0;  // hwloc reports no Core objects on some machines: each PU is one
  const int known_cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PU, o));) {
    Pu p;
    p.os = int(o->os_index);
    p.core = logical_ancestor(t, HWLOC_OBJ_CORE, o);
    if (p.core < 0) p.core = known_cores + lone_cores++;
    p.smt = threads_of_core[p.core]++;
    p.package = std::max(0, logical_ancestor(t, HWLOC_OBJ_PACKAGE, o));
    p.l3 = logical_ancestor(t, HWLOC_OBJ_L3CACHE, o);
    if (p.l3 < 0) p.l3 = p.package;
    p.numa = 0;
    for (hwloc_obj_t n : nodes)
      if (n->cpuset && hwloc_bitmap_isset(n->cpuset, o->os_index)) {
        p.numa = int(n->os_index);
        break;
      }
    pus.push_back(p);
  }
  return pus;
}

template <typename F>
int distinct(const std::vector<Pu>& pus, F key) {
  std::set<int> s;
  for (const Pu& p : pus) s.insert(key(p));
  return int(s.size());
}

std::string plural(int n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Topology Topology::of_this_machine() {
  HwlocTopology t = start();
  finish(t, "this machine's topology");
  Topology out;
  out.pus_ = read_pus(t.get());
  out.source_ = "this machine (hwloc " + hwloc_version() + ")";
  if (out.pus_.empty()) throw std::runtime_error("hwloc found no processing units on this machine");
  return out;
}

Topology Topology::synthetic(const std::string& description) {
  HwlocTopology t = start();
  if (hwloc_topology_set_synthetic(t.get(), description.c_str()) != 0)
    throw std::invalid_argument("hwloc does not understand the synthetic topology '" + description +
                                "': write levels with counts, e.g. 'pack:2 numa:2 l3:2 core:8 pu:2'");
  finish(t, "the synthetic topology '" + description + "'");
  Topology out;
  out.pus_ = read_pus(t.get());
  out.source_ = "synthetic '" + description + "'";
  return out;
}

Topology Topology::from_xml(const std::string& path) {
  if (!is_file(path))
    throw std::invalid_argument("topology file " + path + " does not exist (write one with `lstopo " +
                                path + "` on the machine it describes)");
  HwlocTopology t = start();
  if (hwloc_topology_set_xml(t.get(), path.c_str()) != 0)
    throw std::invalid_argument("hwloc cannot read " + path + " as a topology XML file (write one with "
                                "`lstopo FILE.xml` on the machine it describes)");
  finish(t, "the topology in " + path);
  Topology out;
  out.pus_ = read_pus(t.get());
  out.source_ = "XML file " + path;
  if (out.pus_.empty()) throw std::invalid_argument("the topology in " + path + " has no processing units");
  return out;
}

Topology Topology::load(const std::string& spec) {
  const bool xml = spec.size() > 4 && spec.compare(spec.size() - 4, 4, ".xml") == 0;
  if (xml || is_file(spec)) return from_xml(spec);
  return synthetic(spec);
}

Topology Topology::restricted_to(const CoreSet& cores) const {
  std::set<int> want(cores.cores().begin(), cores.cores().end());
  for (int c : want)
    if (!find(c))
      throw std::invalid_argument("core " + std::to_string(c) + " is not in the topology (" + source_ +
                                  ": cores " + all_cores().sorted().to_string() + ")");
  Topology out;
  out.source_ = source_;
  for (const Pu& p : pus_)
    if (want.count(p.os)) out.pus_.push_back(p);
  return out;
}

const Pu* Topology::find(int os) const {
  for (const Pu& p : pus_)
    if (p.os == os) return &p;
  return nullptr;
}

CoreSet Topology::all_cores() const {
  std::vector<int> v;
  for (const Pu& p : pus_) v.push_back(p.os);
  return CoreSet(std::move(v));
}

int Topology::packages() const { return distinct(pus_, [](const Pu& p) { return p.package; }); }
int Topology::numa_nodes() const { return distinct(pus_, [](const Pu& p) { return p.numa; }); }
int Topology::l3_domains() const { return distinct(pus_, [](const Pu& p) { return p.l3; }); }
int Topology::cores() const { return distinct(pus_, [](const Pu& p) { return p.core; }); }

int Topology::max_threads_per_core() const {
  std::map<int, int> n;
  int most = 0;
  for (const Pu& p : pus_) most = std::max(most, ++n[p.core]);
  return most;
}

std::vector<int> Topology::numa_nodes_of(const CoreSet& cores) const {
  std::set<int> s;
  for (int c : cores.cores())
    if (const Pu* p = find(c)) s.insert(p->numa);
  return {s.begin(), s.end()};
}

std::string Topology::summary() const {
  const int smt = max_threads_per_core();
  return plural(packages(), "package", "packages") + ", " + plural(numa_nodes(), "NUMA node", "NUMA nodes") +
         ", " + plural(l3_domains(), "L3 domain", "L3 domains") + ", " + plural(cores(), "core", "cores") +
         ", " + plural(int(pus_.size()), "PU", "PUs") +
         (smt > 1 ? " (" + std::to_string(smt) + " per core)" : " (no SMT)");
}

}  // namespace ts
