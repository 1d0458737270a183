#include "sweep_plan.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace ts {

std::string SweepPoint::label() const {
  std::string s = std::to_string(procs) + "x" + std::to_string(inter_op) + "x" + std::to_string(threads);
  if (loader_threads != 1) s += " L" + std::to_string(loader_threads);
  if (subscription != "full") s += " " + subscription;
  return s;
}

std::vector<std::pair<int, int>> splits_of(int n) {
  std::vector<std::pair<int, int>> out;
  for (int p = 1; p <= n; ++p)
    if (n % p == 0) out.emplace_back(p, n / p);
  return out;
}

std::vector<Split3> splits_of(int n, const std::vector<int>& inter_op) {
  std::vector<Split3> out;
  for (int I : inter_op) {
    if (I < 1) throw std::invalid_argument("inter-op teams must be at least 1");
    if (n % I != 0) continue;
    for (const auto& [P, T] : splits_of(n / I)) out.push_back({P, I, T});
  }
  std::stable_sort(out.begin(), out.end(), [](const Split3& a, const Split3& b) {
    return a.procs != b.procs ? a.procs < b.procs : a.inter_op < b.inter_op;
  });
  // A repeated I in the list gives each split once.
  out.erase(std::unique(out.begin(), out.end(), [](const Split3& a, const Split3& b) {
              return a.procs == b.procs && a.inter_op == b.inter_op && a.threads == b.threads;
            }), out.end());
  return out;
}

std::vector<SweepPoint> plan_points(const SweepOptions& o, int core_count) {
  if (core_count < 1) throw std::invalid_argument("the sweep needs at least one core");
  if (o.repeats < 1) throw std::invalid_argument("--repeats must be at least 1");
  if (o.models.empty() || o.batch_modes.empty() || o.loader_threads.empty() || o.inter_op.empty())
    throw std::invalid_argument("the sweep needs at least one model, batch mode, inter-op count and loader thread count");
  if (o.warmup_steps < 0) throw std::invalid_argument("--warmup-steps must be >= 0");
  const int per_worker = o.batch_per_worker > 0 ? o.batch_per_worker : std::max(1, o.batch / core_count);
  struct Budget {
    const char* subscription;
    int threads_total;  // P x T
    int cores;
  };
  std::vector<Budget> budgets = {{"full", core_count, core_count}};
  if (o.under && core_count >= 2) budgets.push_back({"under", core_count / 2, core_count / 2});
  if (o.over) budgets.push_back({"over", 2 * core_count, core_count});
  std::vector<SweepPoint> points;
  for (const std::string& model : o.models) {
    const auto st = o.steps.find(model);
    const int steps = st != o.steps.end() ? st->second : o.default_steps;
    if (steps < 1) throw std::invalid_argument("the sweep needs at least one timed step for " + model);
    for (const std::string& mode : o.batch_modes) {
      if (mode != "global" && mode != "per_worker")
        throw std::invalid_argument("batch mode must be global or per_worker, got '" + mode + "'");
      for (const Budget& b : budgets)
        for (const Split3& sp : splits_of(b.threads_total, o.inter_op))
          for (int loaders : o.loader_threads) {
            if (loaders < 1) throw std::invalid_argument("loader threads must be at least 1");
            SweepPoint p;
            p.index = int(points.size());
            p.model = model;
            p.batch_mode = mode;
            p.subscription = b.subscription;
            p.procs = sp.procs;
            p.inter_op = sp.inter_op;
            p.threads = sp.threads;
            const int P = sp.procs;
            p.cores = b.cores;
            p.loader_threads = loaders;
            p.batch_per_worker = mode == "per_worker" ? per_worker : 0;
            p.global_batch = mode == "per_worker" ? per_worker * P : o.batch;
            p.steps = steps;
            p.warmup_steps = o.warmup_steps;
            points.push_back(p);
          }
    }
  }
  return points;
}

std::vector<Trial> round_order(int points, int round, int first_order) {
  std::vector<Trial> out;
  for (int i = 0; i < points; ++i) {
    const int p = round % 2 == 0 ? i : points - 1 - i;
    out.push_back(Trial{p, round, first_order + i});
  }
  return out;
}

std::vector<Trial> interleave(int points, int repeats) {
  std::vector<Trial> out;
  for (int r = 0; r < repeats; ++r) {
    const std::vector<Trial> round = round_order(points, r, int(out.size()));
    out.insert(out.end(), round.begin(), round.end());
  }
  return out;
}

std::vector<std::string> parse_name_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int> parse_int_list(const std::string& flag, const std::string& v) {
  std::vector<int> out;
  for (const std::string& item : parse_name_list(v)) {
    char* end = nullptr;
    const long x = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || x < 1 || x > 4096)
      throw std::invalid_argument(flag + " expects whole numbers >= 1 and <= 4096 separated by commas: '" +
                                  item + "' in '" + v + "' is not one");
    out.push_back(int(x));
  }
  if (out.empty()) throw std::invalid_argument(flag + " needs at least one number");
  return out;
}

void parse_steps(const std::string& v, SweepOptions& o) {
  if (v.find('=') == std::string::npos) {
    const int n = parse_int_list("--steps", v).at(0);
    o.steps.clear();
    o.default_steps = n;
    return;
  }
  for (const std::string& item : parse_name_list(v)) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::invalid_argument("--steps expects N or model=N,model=N, got '" + v + "'");
    o.steps[item.substr(0, eq)] = parse_int_list("--steps", item.substr(eq + 1)).at(0);
  }
}

}  // namespace ts
