#include "placement.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>

namespace ts {

namespace {

using Units = std::vector<Pu>;

std::string join(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// The first PU of every physical core, in topology order.
Units first_threads(const Topology& t) {
  Units out;
  std::set<int> seen;
  for (const Pu& p : t.pus())
    if (seen.insert(p.core).second) out.push_back(p);
  return out;
}

// Worker r takes units [r*W, (r+1)*W), wrapping past the end (oversubscription).
std::vector<Units> compact(const Units& u, int P, int W, int stride) {
  std::vector<Units> out(static_cast<size_t>(P));
  for (int r = 0; r < P; ++r)
    for (int i = 0; i < W; ++i) out[size_t(r)].push_back(u[size_t((int64_t(r) * stride + i) % int64_t(u.size()))]);
  return out;
}

using Key = std::function<int(const Pu&)>;

// Workers balanced over the domains of levels[0] (each inside one domain), then recursively
// over those of levels[1] inside each; compact where they do not fit whole. P x W <= u.size().
std::vector<Units> balanced(const Units& u, int P, int W, const std::vector<Key>& levels) {
  if (levels.empty() || P == 0) return compact(u, P, W, W);
  std::vector<Units> domains;
  std::vector<int> keys;
  for (const Pu& p : u) {
    const int k = levels[0](p);
    auto it = std::find(keys.begin(), keys.end(), k);
    if (it == keys.end()) {
      keys.push_back(k);
      domains.emplace_back();
      it = keys.end() - 1;
    }
    domains[size_t(it - keys.begin())].push_back(p);
  }
  const std::vector<Key> rest(levels.begin() + 1, levels.end());
  if (domains.size() == 1) return balanced(u, P, W, rest);
  int fit = 0;
  for (const Units& d : domains) fit += int(d.size()) / W;
  if (fit < P) return compact(u, P, W, W);  // some worker must straddle: keep them tight
  std::vector<int> count(domains.size(), 0);
  for (int r = 0; r < P; ++r) {
    int best = -1;
    for (size_t d = 0; d < domains.size(); ++d) {
      const int free = int(domains[d].size()) - count[d] * W;
      if (free < W) continue;
      if (best < 0 || free > int(domains[size_t(best)].size()) - count[size_t(best)] * W) best = int(d);
    }
    ++count[size_t(best)];
  }
  std::vector<Units> out;
  for (size_t d = 0; d < domains.size(); ++d)
    for (Units& w : balanced(domains[d], count[d], W, rest)) out.push_back(std::move(w));
  return out;
}

template <typename F>
std::vector<int> distinct_of(const Units& u, F key) {
  std::set<int> s;
  for (const Pu& p : u) s.insert(key(p));
  return {s.begin(), s.end()};
}

std::string workers_list(const std::vector<int>& ranks) {
  return (ranks.size() == 1 ? "worker " : "workers ") + join(ranks);
}

}  // namespace

PlacementPolicy parse_placement(const std::string& name) {
  if (name == "numa") return PlacementPolicy::kNuma;
  if (name == "compact") return PlacementPolicy::kCompact;
  if (name == "spread") return PlacementPolicy::kSpread;
  throw std::invalid_argument("unknown placement '" + name + "': choose numa, compact or spread");
}

SmtPolicy parse_smt(const std::string& name) {
  if (name == "avoid") return SmtPolicy::kAvoid;
  if (name == "use") return SmtPolicy::kUse;
  throw std::invalid_argument("unknown SMT choice '" + name + "': choose avoid or use");
}

const char* placement_name(PlacementPolicy p) {
  return p == PlacementPolicy::kNuma ? "numa" : p == PlacementPolicy::kCompact ? "compact" : "spread";
}

const char* smt_name(SmtPolicy s) { return s == SmtPolicy::kAvoid ? "avoid" : "use"; }

int placeable_threads(const Topology& t, SmtPolicy smt) {
  return smt == SmtPolicy::kAvoid ? t.cores() : int(t.pus().size());
}

CoreSet placement_units(const Topology& t, SmtPolicy smt) {
  if (smt == SmtPolicy::kUse) return t.all_cores();
  std::vector<int> v;
  for (const Pu& p : first_threads(t)) v.push_back(p.os);
  return CoreSet(std::move(v));
}

PlacementPlan place(const Topology& t, int P, int I, int T, PlacementPolicy policy, SmtPolicy smt) {
  if (P < 1 || I < 1 || T < 1) throw std::invalid_argument("a placement needs P, I and T of at least 1");
  if (t.pus().empty()) throw std::invalid_argument("a placement needs at least one core");
  const int W = I * T;
  const int64_t need = int64_t(P) * W;
  PlacementPlan plan;
  Units units;
  if (smt == SmtPolicy::kAvoid && need <= t.cores()) {
    units = first_threads(t);
  } else {
    units = t.pus();
    if (smt == SmtPolicy::kAvoid && t.max_threads_per_core() > 1) {
      plan.uses_siblings = true;
      plan.notes.push_back("the split needs " + std::to_string(need) + " threads, more than the " +
                           std::to_string(t.cores()) + " physical cores: it uses their SMT siblings, as "
                           "--smt use would");
    }
  }
  const int S = int(units.size());
  std::vector<Units> of_worker;
  if (need > S) {
    plan.oversubscribed = true;
    plan.notes.push_back("the split needs " + std::to_string(need) + " threads on " + std::to_string(S) +
                         " hardware threads: oversubscribed, workers wrap around and share cores");
    of_worker = compact(units, P, W, W);
  } else if (policy == PlacementPolicy::kCompact) {
    of_worker = compact(units, P, W, W);
  } else if (policy == PlacementPolicy::kSpread) {
    of_worker = compact(units, P, W, S / P);
  } else {
    of_worker = balanced(units, P, W,
                         {[](const Pu& p) { return p.package; }, [](const Pu& p) { return p.numa; },
                          [](const Pu& p) { return p.l3; }});
  }

  const bool several_nodes = t.numa_nodes() > 1;
  std::vector<int> straddle_nodes, straddle_packages;
  for (int r = 0; r < P; ++r) {
    const Units& u = of_worker[size_t(r)];
    WorkerPlace w;
    // Oversubscribed, one core can come round twice: it is listed once.
    for (int i = 0; i < I; ++i) {
      std::vector<int> team;
      for (int j = 0; j < T; ++j) team.push_back(u[size_t(i * T + j)].os);
      w.teams.push_back(CoreSet::united(CoreSet(), CoreSet(team)));
      w.cores = CoreSet::united(w.cores, w.teams.back());
    }
    w.numa_nodes = distinct_of(u, [](const Pu& p) { return p.numa; });
    w.packages = distinct_of(u, [](const Pu& p) { return p.package; });
    w.l3_domains = distinct_of(u, [](const Pu& p) { return p.l3; });
    w.shares_physical_cores = distinct_of(u, [](const Pu& p) { return p.core; }).size() <
                              distinct_of(u, [](const Pu& p) { return p.os; }).size();
    if (several_nodes) w.memory = (w.numa_nodes.size() == 1 ? "bind:" : "interleave:") + join(w.numa_nodes);
    if (w.numa_nodes.size() > 1) straddle_nodes.push_back(r);
    if (w.packages.size() > 1) straddle_packages.push_back(r);
    plan.workers.push_back(std::move(w));
  }
  if (!straddle_nodes.empty() && !plan.oversubscribed) {
    int largest = 0;
    std::vector<int> nodes;
    for (const Pu& p : units) nodes.push_back(p.numa);
    for (int n : distinct_of(units, [](const Pu& p) { return p.numa; }))
      largest = std::max(largest, int(std::count(nodes.begin(), nodes.end(), n)));
    const std::string why =
        W > largest ? "a worker's " + std::to_string(W) + " threads are more than a node's " + std::to_string(largest)
        : policy == PlacementPolicy::kNuma ? std::to_string(P) + " workers of " + std::to_string(W) +
                                                 " threads do not fit whole into the nodes"
                                           : std::string("--placement ") + placement_name(policy) +
                                                 " does not keep workers inside nodes (--placement numa does)";
    plan.notes.push_back(workers_list(straddle_nodes) + " straddle" + (straddle_nodes.size() == 1 ? "s" : "") +
                         " NUMA nodes (" + why + "): " +
                         (straddle_nodes.size() == 1 ? "its" : "their") + " memory is interleaved over them");
  }
  if (!straddle_packages.empty() && !plan.oversubscribed)
    plan.notes.push_back(workers_list(straddle_packages) + " span" + (straddle_packages.size() == 1 ? "s" : "") +
                         " two sockets: " + (straddle_packages.size() == 1 ? "its" : "their") +
                         " threads meet across the socket link at every barrier");
  return plan;
}

std::string describe_memory(const std::string& memory) {
  if (memory.empty()) return "first touch";
  const size_t colon = memory.find(':');
  const std::string how = memory.substr(0, colon), nodes = colon == std::string::npos ? "" : memory.substr(colon + 1);
  if (how == "bind") return "bound to node " + nodes;
  if (how == "interleave") return "interleaved over nodes " + nodes;
  return memory;
}

std::string describe(const WorkerPlace& w) {
  std::string s = "cores " + w.cores.to_string() + " (node" + (w.numa_nodes.size() > 1 ? "s " : " ") +
                  join(w.numa_nodes) + ", package" + (w.packages.size() > 1 ? "s " : " ") + join(w.packages) +
                  ", L3 " + join(w.l3_domains) + (w.shares_physical_cores ? ", SMT siblings" : "") + ")";
  return s + ", memory " + describe_memory(w.memory);
}

}  // namespace ts
