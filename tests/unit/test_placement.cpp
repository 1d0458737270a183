// Placement on machines we do not have: hwloc builds them from synthetic descriptions.
// Numbering (hwloc's synthetic OS numbers, checked with lstopo --input):
//  kOneSocket64:  1 package, 1 node, 8 L3 of 8 cores, no SMT: L3 k = cores 8k..8k+7.
//  kOneSocketSmt: 1 package, 2 nodes, 2 L3 per node, 8 cores per L3, 2 threads per core
//                 numbered as Linux numbers most servers: core c = PUs c and c+32.
//  kTwoSocket64:  2 packages x 2 nodes x 2 L3 x 8 cores, no SMT: node n = cores 16n..16n+15.
//  kTwoSocketSmt: the same with 2 threads per core: core c = PUs c and c+64 (128 PUs).
#include <hwloc.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "core_set.h"
#include "memory_policy.h"
#include "placement.h"
#include "topology.h"

using ts::CoreSet;
using ts::PlacementPolicy;
using ts::SmtPolicy;
using ts::Topology;

namespace {

const char* const kOneSocket64 = "pack:1 l3:8 core:8 pu:1";
const char* const kOneSocketSmt = "pack:1 numa:2 l3:2 core:8 pu:2(indexes=2*32:1*2)";
const char* const kTwoSocket64 = "pack:2 numa:2 l3:2 core:8 pu:1";
const char* const kTwoSocketSmt = "pack:2 numa:2 l3:2 core:8 pu:2(indexes=2*64:1*2)";

CoreSet cores(const std::string& s) { return CoreSet::parse(s); }

ts::PlacementPlan plan(const char* machine, int P, int I, int T,
                       PlacementPolicy policy = PlacementPolicy::kNuma, SmtPolicy smt = SmtPolicy::kAvoid) {
  return ts::place(Topology::synthetic(machine), P, I, T, policy, smt);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(accepted)";
}

bool mentions(const ts::PlacementPlan& p, const std::string& text) {
  return std::any_of(p.notes.begin(), p.notes.end(), [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("hwloc's synthetic machines read as their descriptions say", "[placement]") {
  const Topology a = Topology::synthetic(kOneSocket64);
  CHECK(a.summary() == "1 package, 1 NUMA node, 8 L3 domains, 64 cores, 64 PUs (no SMT)");
  CHECK(a.find(13)->l3 == 1);
  const Topology b = Topology::synthetic(kOneSocketSmt);
  CHECK(b.summary() == "1 package, 2 NUMA nodes, 4 L3 domains, 32 cores, 64 PUs (2 per core)");
  CHECK(b.find(5)->core == b.find(37)->core);
  CHECK(b.find(5)->smt == 0);
  CHECK(b.find(37)->smt == 1);
  CHECK(b.find(37)->numa == 0);
  CHECK(b.find(16)->numa == 1);
  const Topology d = Topology::synthetic(kTwoSocketSmt);
  CHECK(d.summary() == "2 packages, 4 NUMA nodes, 8 L3 domains, 64 cores, 128 PUs (2 per core)");
  CHECK(d.find(100)->package == 1);
  CHECK(d.find(100)->numa == 2);  // core 36: package 1's first node
  CHECK(d.numa_nodes_of(cores("15-16,127")) == std::vector<int>{0, 1, 3});
  CHECK(ts::placeable_threads(d, SmtPolicy::kAvoid) == 64);
  CHECK(ts::placeable_threads(d, SmtPolicy::kUse) == 128);
}

TEST_CASE("a topology written to XML by hwloc reads back the same", "[placement]") {
  hwloc_topology_t t;
  REQUIRE(hwloc_topology_init(&t) == 0);
  REQUIRE(hwloc_topology_set_synthetic(t, kTwoSocketSmt) == 0);
  REQUIRE(hwloc_topology_load(t) == 0);
  const std::string path = std::string(TEST_TMP_DIR) + "/two_socket.xml";
  REQUIRE(hwloc_topology_export_xml(t, path.c_str(), 0) == 0);
  hwloc_topology_destroy(t);
  const Topology x = Topology::load(path);
  const Topology s = Topology::synthetic(kTwoSocketSmt);
  CHECK(x.source() == "XML file " + path);
  REQUIRE(x.pus().size() == s.pus().size());
  for (size_t i = 0; i < s.pus().size(); ++i) {
    CHECK(x.pus()[i].os == s.pus()[i].os);
    CHECK(x.pus()[i].core == s.pus()[i].core);
    CHECK(x.pus()[i].numa == s.pus()[i].numa);
    CHECK(x.pus()[i].l3 == s.pus()[i].l3);
    CHECK(x.pus()[i].package == s.pus()[i].package);
  }
  CHECK(ts::place(x, 4, 1, 16, PlacementPolicy::kNuma, SmtPolicy::kAvoid).workers[3].cores == cores("48-63"));
}

TEST_CASE("bad topologies and placements are refused with what to do", "[placement]") {
  CHECK_THAT(message_of([] { Topology::synthetic("sockets:2"); }),
             Catch::Contains("'sockets:2'") && Catch::Contains("pack:2 numa:2"));
  CHECK_THAT(message_of([] { Topology::load("/nonexistent/machine.xml"); }),
             Catch::Contains("/nonexistent/machine.xml does not exist") && Catch::Contains("lstopo"));
  CHECK_THAT(message_of([] { Topology::synthetic(kOneSocket64).restricted_to(cores("60-64")); }),
             Catch::Contains("core 64 is not in the topology") && Catch::Contains("0-63"));
  CHECK_THAT(message_of([] { ts::parse_placement("scatter"); }), Catch::Contains("numa, compact or spread"));
  CHECK_THAT(message_of([] { ts::parse_smt("yes"); }), Catch::Contains("avoid or use"));
  CHECK_THAT(message_of([] { plan(kOneSocket64, 0, 1, 1); }), Catch::Contains("at least 1"));
}

TEST_CASE("this machine's topology covers the cores this process may use", "[placement]") {
  const Topology t = Topology::of_this_machine();
  CHECK(t.source().find("this machine (hwloc ") == 0);
  const CoreSet mine = CoreSet::of_this_process();
  const Topology r = t.restricted_to(mine);
  CHECK(r.all_cores().sorted() == mine);
  CHECK(ts::placeable_threads(r, SmtPolicy::kUse) == mine.size());
}

// Hand-worked placements: each expectation below was worked out from the numbering above.
TEST_CASE("numa placement keeps each worker inside one node, balanced over sockets", "[placement]") {
  // Four workers of 16: one node each, bound to it.
  auto p = plan(kTwoSocketSmt, 4, 1, 16);
  for (int r = 0; r < 4; ++r) {
    CHECK(p.workers[size_t(r)].cores == CoreSet::parse(std::to_string(16 * r) + "-" + std::to_string(16 * r + 15)));
    CHECK(p.workers[size_t(r)].memory == "bind:" + std::to_string(r));
  }
  CHECK(p.notes.empty());
  // Two workers of 16 (half the machine): one per socket, not both on socket 0.
  p = plan(kTwoSocketSmt, 2, 1, 16);
  CHECK(p.workers[0].cores == cores("0-15"));
  CHECK(p.workers[1].cores == cores("32-47"));
  // Four workers of 4 on the 64-core two-socket machine: one per node, each in its node's
  // first L3.
  p = plan(kTwoSocket64, 4, 1, 4);
  CHECK(p.workers[0].cores == cores("0-3"));
  CHECK(p.workers[1].cores == cores("16-19"));
  CHECK(p.workers[2].cores == cores("32-35"));
  CHECK(p.workers[3].cores == cores("48-51"));
  // Eight workers of 8: one per L3.
  p = plan(kTwoSocket64, 8, 1, 8);
  for (int r = 0; r < 8; ++r) CHECK(p.workers[size_t(r)].l3_domains == std::vector<int>{r});
  // Three workers of 8 on the two-socket machine: two on socket 0 (nodes 0 and 1), one on 1.
  p = plan(kTwoSocket64, 3, 1, 8);
  CHECK(p.workers[0].cores == cores("0-7"));
  CHECK(p.workers[1].cores == cores("16-23"));
  CHECK(p.workers[2].cores == cores("32-39"));
}

TEST_CASE("numa placement says when a worker must straddle nodes", "[placement]") {
  // Two workers of 32 threads: a node has 16 cores, so each takes its socket's two nodes.
  auto p = plan(kTwoSocketSmt, 2, 1, 32);
  CHECK(p.workers[0].cores == cores("0-31"));
  CHECK(p.workers[0].memory == "interleave:0,1");
  CHECK(p.workers[1].cores == cores("32-63"));
  CHECK(p.workers[1].memory == "interleave:2,3");
  CHECK(mentions(p, "workers 0,1 straddle NUMA nodes (a worker's 32 threads are more than a node's 16)"));
  CHECK_FALSE(mentions(p, "sockets"));
  // One worker of everything spans both sockets.
  p = plan(kTwoSocket64, 1, 1, 64);
  CHECK(p.workers[0].memory == "interleave:0,1,2,3");
  CHECK(mentions(p, "worker 0 spans two sockets"));
  // Three workers of 10 on two nodes of 16: only one fits whole in each, so they stay tight
  // and the middle one straddles.
  p = plan(kOneSocketSmt, 3, 1, 10);
  CHECK(p.workers[0].cores == cores("0-9"));
  CHECK(p.workers[1].cores == cores("10-19"));
  CHECK(p.workers[1].numa_nodes == std::vector<int>{0, 1});
  CHECK(p.workers[2].cores == cores("20-29"));
  CHECK(mentions(p, "worker 1 straddles NUMA nodes (3 workers of 10 threads do not fit whole into the nodes)"));
}

TEST_CASE("compact and spread place in topology order", "[placement]") {
  auto p = plan(kTwoSocket64, 2, 1, 8, PlacementPolicy::kCompact);
  CHECK(p.workers[0].cores == cores("0-7"));
  CHECK(p.workers[1].cores == cores("8-15"));
  CHECK(p.workers[1].memory == "bind:0");
  p = plan(kTwoSocket64, 2, 1, 8, PlacementPolicy::kSpread);
  CHECK(p.workers[0].cores == cores("0-7"));
  CHECK(p.workers[1].cores == cores("32-39"));
  p = plan(kTwoSocket64, 3, 1, 12, PlacementPolicy::kCompact);
  CHECK(p.workers[1].cores == cores("12-23"));
  CHECK(p.workers[2].cores == cores("24-35"));
  CHECK(mentions(p, "workers 1,2 straddle NUMA nodes (--placement compact does not keep workers inside nodes"));
  CHECK(mentions(p, "worker 2 spans two sockets"));
  // A machine with one node: no memory policy, the kernel's first touch is local already.
  p = plan(kOneSocket64, 4, 2, 8, PlacementPolicy::kSpread);
  CHECK(p.workers[3].cores == cores("48-63"));
  CHECK(p.workers[3].memory.empty());
}

TEST_CASE("SMT siblings are used only when asked or when the cores run out", "[placement]") {
  // --smt avoid: 32 threads on 32 cores, one hardware thread each.
  auto p = plan(kOneSocketSmt, 2, 1, 16);
  CHECK(p.workers[0].cores == cores("0-15"));
  CHECK(p.workers[1].cores == cores("16-31"));
  CHECK_FALSE(p.workers[0].shares_physical_cores);
  CHECK_FALSE(p.uses_siblings);
  // --smt use: a worker takes both threads of a core before the next core.
  p = plan(kOneSocketSmt, 1, 2, 2, PlacementPolicy::kNuma, SmtPolicy::kUse);
  CHECK(p.workers[0].cores.cores() == std::vector<int>{0, 32, 1, 33});
  CHECK(p.workers[0].teams[0] == CoreSet({0, 32}));
  CHECK(p.workers[0].teams[1] == CoreSet({1, 33}));
  CHECK(p.workers[0].shares_physical_cores);
  // --smt avoid with more threads than cores: siblings, said.
  p = plan(kOneSocketSmt, 2, 1, 32);
  CHECK(p.uses_siblings);
  CHECK(mentions(p, "the split needs 64 threads, more than the 32 physical cores"));
  CHECK(p.workers[0].numa_nodes == std::vector<int>{0});
  CHECK(p.workers[1].cores.sorted() == cores("16-31,48-63"));
  // Beyond every hardware thread: oversubscribed, workers wrap around.
  p = plan(kOneSocket64, 2, 1, 64);
  CHECK(p.oversubscribed);
  CHECK(p.workers[1].cores == p.workers[0].cores);
  CHECK(mentions(p, "oversubscribed"));
}

TEST_CASE("a one-node machine without SMT is placed as the flat core list was", "[placement]") {
  // The machines this project's CI runs on: compact order, the old slice [r*W, (r+1)*W).
  const Topology t = Topology::synthetic("pack:1 core:2 pu:1");
  for (auto policy : {PlacementPolicy::kNuma, PlacementPolicy::kCompact, PlacementPolicy::kSpread}) {
    auto p = ts::place(t, 2, 1, 1, policy, SmtPolicy::kAvoid);
    CHECK(p.workers[0].cores == CoreSet({0}));
    CHECK(p.workers[1].cores == CoreSet({1}));
    CHECK(p.notes.empty());
  }
  auto p = ts::place(t, 1, 2, 1, PlacementPolicy::kNuma, SmtPolicy::kAvoid);
  CHECK(p.workers[0].teams == std::vector<CoreSet>{CoreSet({0}), CoreSet({1})});
  p = ts::place(t.restricted_to(CoreSet({1})), 2, 1, 1, PlacementPolicy::kNuma, SmtPolicy::kAvoid);
  CHECK(p.oversubscribed);
  CHECK(p.workers[0].cores == CoreSet({1}));
  CHECK(p.workers[1].cores == CoreSet({1}));
  p = ts::place(t, 1, 1, 3, PlacementPolicy::kNuma, SmtPolicy::kAvoid);
  CHECK(p.workers[0].cores == CoreSet({0, 1}));
  CHECK(p.workers[0].cores == CoreSet::parse("0-1").slice(0, 3));
}

// Every split P x I x T of the machine's cores, against rules worked out by hand for these
// machines (node = 16 cores, L3 = 8, socket = 32 on the two-socket ones): every thread on its
// own physical core, workers disjoint, each inside one L3 when it fits in one, one node when it
// fits in one, balanced over nodes, and a worker bigger than a node takes whole nodes.
TEST_CASE("every split of the 64- and 128-PU machines is placed by the rules", "[placement]") {
  struct Machine {
    const char* description;
    int node, l3;
  };
  for (const Machine m : {Machine{kOneSocket64, 64, 8}, Machine{kOneSocketSmt, 16, 8}, Machine{kTwoSocket64, 16, 8},
                          Machine{kTwoSocketSmt, 16, 8}}) {
    const Topology t = Topology::synthetic(m.description);
    const int n = ts::placeable_threads(t, SmtPolicy::kAvoid);
    int splits = 0;
    for (int P = 1; P <= n; ++P)
      for (int I = 1; P * I <= n; ++I) {
        if (n % (P * I) != 0) continue;
        const int T = n / (P * I), W = I * T;
        ++splits;
        INFO(m.description << ": " << P << "x" << I << "x" << T);
        const auto p = ts::place(t, P, I, T, PlacementPolicy::kNuma, SmtPolicy::kAvoid);
        REQUIRE(p.workers.size() == size_t(P));
        CHECK_FALSE(p.oversubscribed);
        CHECK_FALSE(p.uses_siblings);
        std::set<int> used, used_cores;
        std::map<int, int> per_node;
        for (const auto& w : p.workers) {
          CHECK(w.cores.size() == W);
          REQUIRE(w.teams.size() == size_t(I));
          for (int i = 0; i < I; ++i)
            for (int k = 0; k < T; ++k) CHECK(w.teams[size_t(i)][k] == w.cores[i * T + k]);
          for (int c : w.cores.cores()) {
            CHECK(used.insert(c).second);
            CHECK(used_cores.insert(t.find(c)->core).second);
          }
          CHECK_FALSE(w.shares_physical_cores);
          const size_t nodes_needed = size_t((W + m.node - 1) / m.node);
          CHECK(w.numa_nodes.size() == nodes_needed);
          if (W <= m.l3) CHECK(w.l3_domains.size() == 1);
          if (W < m.l3) CHECK(w.cores == w.cores.sorted());
          for (int k = 0; k < I; ++k)
            if (T <= m.l3) CHECK(t.restricted_to(w.teams[size_t(k)]).l3_domains() == 1);
          if (t.numa_nodes() > 1)
            CHECK(w.memory == (nodes_needed == 1 ? "bind:" + std::to_string(w.numa_nodes[0]) : w.memory));
          ++per_node[w.numa_nodes[0]];
        }
        CHECK(int(used.size()) == n);
        if (W <= m.node) {
          CHECK(int(per_node.size()) == std::min(P, t.numa_nodes()));
          for (const auto& [node, k] : per_node) CHECK(k == std::max(1, P / t.numa_nodes()));
        }
        CHECK(p.notes.empty() == (W <= m.node));
      }
    CHECK(splits > 20);
  }
}

TEST_CASE("a thread takes the memory policy it is given and reads it back", "[placement]") {
  std::string before, after, refusal;
  std::thread t([&] {
    before = ts::current_memory_policy();
    setenv("THREADSPLIT_MEMBIND", "bind:0", 1);
    refusal = ts::apply_memory_policy_from_environment();
    after = ts::current_memory_policy();
    unsetenv("THREADSPLIT_MEMBIND");
  });
  t.join();
  CHECK(before == "first touch");
  CHECK(refusal.empty());
  CHECK(after == "bind:0");
  for (const char* bad : {"bind", "bind:", "bind:0,", "bind:a", "membind:0", "interleave:1024", "bind:00000"}) {
    INFO(bad);
    setenv("THREADSPLIT_MEMBIND", bad, 1);
    CHECK_THAT(message_of([] { ts::apply_memory_policy_from_environment(); }),
               Catch::Contains("THREADSPLIT_MEMBIND must be bind:N") && Catch::Contains(std::string("'") + bad + "'"));
  }
  unsetenv("THREADSPLIT_MEMBIND");
  CHECK(ts::apply_memory_policy_from_environment().empty());
}

TEST_CASE("OMP_PLACES written by the launcher reads back in its order", "[placement]") {
  CHECK(CoreSet::from_omp_places(CoreSet({0, 32, 1, 33}).omp_places()).cores() == std::vector<int>{0, 32, 1, 33});
  CHECK(CoreSet::from_omp_places("{5}").cores() == std::vector<int>{5});
  for (const char* other : {"", "cores", "{0:4}", "{0,1},{2,3}", "{0},{0}", "{0}{1}", "{}", "{0},"}) {
    INFO(other);
    CHECK(CoreSet::from_omp_places(other).empty());
  }
}
