#include "autotune.h"

#include "placement.h"
#include "topology.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "core_set.h"
#include "json_io.h"
#include "stop_signals.h"
#include "sweep_plan.h"
#include "timing.h"
#include "trial_runner.h"

namespace ts {

GroupSummary autotune_pick(const std::vector<PointResult>& results) {
  const std::vector<GroupSummary> g = summarize(results);
  if (g.empty() || g.front().best < 0) return GroupSummary{};
  return g.front();
}

std::vector<std::string> trial_base_args(const std::vector<std::string>& args) {
  // Each flag a trial sets itself, and whether it takes a value.
  static const std::map<std::string, bool> owned = {
      {"--autotune", false},       {"--autotune-steps", true}, {"--autotune-rounds", true},
      {"--autotune-time", true},   {"--autotune-budget", true}, {"--procs", true},
      {"--threads", true},         {"--inter-op", true},       {"--report", true},         {"--save", true},
      {"--trace", true},           {"--checkpoint-dir", true}, {"--checkpoint-every", true},
      {"--checkpoint-keep", true}, {"--checkpoint-overwrite", false}, {"--resume", false},
      {"--init", true},            {"--progress", true},       {"--eval-every", true},
      {"--warmup-steps", true},    {"--steps", true},          {"--stop-after", true},
      {"--port", true},            {"--port-file", true}};
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const size_t eq = a.find('=');
    const auto it = owned.find(a.substr(0, eq));
    if (it == owned.end()) {
      out.push_back(a);
      continue;
    }
    if (it->second && eq == std::string::npos) ++i;  // its value is the next word
  }
  return out;
}

std::vector<int> halve(const std::vector<std::pair<int, double>>& rung_ips) {
  std::vector<std::pair<int, double>> r = rung_ips;
  std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  const size_t keep = r.size() <= 2 ? r.size() : std::max<size_t>(2, (r.size() + 1) / 2);
  std::vector<int> out;
  for (size_t i = 0; i < keep && i < r.size(); ++i)
    if (r[i].second > 0) out.push_back(r[i].first);
  return out;
}

namespace {

std::string seconds_text(double s) {
  char b[32];
  std::snprintf(b, sizeof b, s < 10 ? "%.1f s" : "%.0f s", s);
  return b;
}

std::string pct_text(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * x);
  return b;
}

}  // namespace

AutotuneChoice autotune(const RunOptions& o, const std::string& exe, const std::vector<std::string>& args) {
  const CoreSet cores = o.cores.empty() ? CoreSet::of_this_process() : CoreSet::parse(o.cores);
  // What the trials' placement may use before SMT siblings (common/placement.h).
  const int n = placeable_threads(Topology::of_this_machine().restricted_to(cores), parse_smt(o.smt));
  const int warmup = o.warmup_steps > 0 ? o.warmup_steps : 3;
  std::vector<SweepPoint> points;
  // Inter-op 1 and 2: the sweep's default axis (more teams than two rarely pays: each costs
  // a replica of the activations and a share of the batch too small to keep its team busy).
  for (const Split3& sp : splits_of(n, {1, 2})) {
    const int P = sp.procs, T = sp.threads;
    SweepPoint p;
    p.index = int(points.size());
    p.model = o.model;
    p.batch_mode = o.batch_per_worker > 0 ? "per_worker" : "global";
    p.subscription = "full";
    p.procs = P;
    p.threads = T;
    p.inter_op = sp.inter_op;
    p.cores = n;
    p.loader_threads = o.loader_threads;
    p.batch_per_worker = o.batch_per_worker;
    p.global_batch = o.batch_per_worker > 0 ? o.batch_per_worker * P : o.batch;
    p.warmup_steps = warmup;
    points.push_back(p);
  }
  AutotuneChoice choice;
  if (points.size() == 1) {
    choice.procs = points[0].procs;
    choice.threads = points[0].threads;
    choice.reason = "one core: 1x1x1 is the only split";
    return choice;
  }
  // Slices of the run need the same steps at every split: a fixed global batch.
  bool chain = o.batch_per_worker == 0;
  std::printf("threadsplit: --autotune: %zu splits of %d cores (%s) by successive halving, then "
              "paired rounds of the last two (at most %d), within %s of the planned run and %.0f s; "
              "trials are %s\n",
              points.size(), n, cores.to_string().c_str(), o.autotune_rounds,
              pct_text(o.autotune_budget).c_str(), o.autotune_time_s,
              chain ? "slices of the run that count toward training, where it is long enough"
                    : "separate runs (the global batch depends on P), all cost");
  std::fflush(stdout);

  char dir_template[] = "/tmp/threadsplit-autotune-XXXXXX";
  const char* dir_c = mkdtemp(dir_template);
  if (!dir_c) throw std::runtime_error("--autotune: cannot create a temporary directory in /tmp");
  const std::string dir = dir_c;
  // Removed here if the choice fails or is stopped; after the run by the caller otherwise.
  struct Scratch {
    std::string dir;
    bool handed_over = false;
    bool keep = false;  // a trial failed: its log stays, named in its line
    ~Scratch() {
      std::error_code ec;
      if (!handed_over && !keep) std::filesystem::remove_all(dir, ec);
    }
  } scratch{dir};
  const std::vector<std::string> base = trial_base_args(args);

  const double start = now_seconds();
  std::string from = o.init;   // where the next slice starts (empty: the run's own start)
  int64_t trained = 0;         // steps of the chained slices so far
  int64_t total_steps = 0;     // the planned run's, from the first trial's report
  int trial_count = 0;
  double overhead_sum = 0;     // a trial's wall time beyond its steps, summed
  std::vector<std::vector<TrialFigures>> figures(points.size());
  std::vector<double> step_s(points.size(), 0);  // latest seconds per step at each split

  // One trial of point i with `timed` steps after the warm-up, as round `round`.
  auto trial = [&](size_t i, int timed, int round) {
    const SweepPoint& p = points[i];
    const int steps = warmup + timed;
    const std::string stem = dir + "/t" + std::to_string(trial_count) + "_" + p.label();
    TrialRun run;
    run.args = base;
    const std::vector<std::string> own = {
        "--procs", std::to_string(p.procs), "--threads", std::to_string(p.threads),
        "--inter-op", std::to_string(p.inter_op),
        "--warmup-steps", std::to_string(warmup), "--eval-every", "0", "--progress", "off",
        "--stop-after", std::to_string(steps), "--save", stem + ".ckpt"};
    run.args.insert(run.args.end(), own.begin(), own.end());
    if (o.steps > 0)
      run.args.insert(run.args.end(), {"--steps", std::to_string(o.steps - (chain ? trained : 0))});
    const std::string init = chain ? from : o.init;
    if (!init.empty()) run.args.insert(run.args.end(), {"--init", init});
    run.report_path = stem + ".json";
    run.log_path = stem + ".log";
    run.timeout_s = std::max(60.0, o.autotune_time_s);
    const double t0 = now_seconds();
    TrialFigures f = run_trial(exe, run);
    const double wall = now_seconds() - t0;
    throw_if_stop_requested();  // the trial in flight was passed the signal
    ++trial_count;
    if (f.ok && total_steps == 0) {
      try {
        const JsonNode r = read_json_file(run.report_path);
        total_steps = int64_t(r["config"]["schedule_steps"].num());
        if (total_steps <= 0) {  // a constant schedule records none: from the epoch plan
          const int64_t per_epoch = int64_t(r["epochs"][0]["planned_steps"].num());
          const double epochs = o.epochs_exact > 0 ? o.epochs_exact : double(o.epochs);
          total_steps = int64_t(std::ceil(epochs * double(per_epoch)));
          if (o.steps > 0) total_steps = std::min<int64_t>(o.steps, total_steps);
        }
        if (!o.init.empty() && o.steps == 0) total_steps = 0;  // unknown offset: no slices
      } catch (const std::exception&) {
        total_steps = 0;
      }
      // Too short a run to take the trials out of it: every trial starts at the run's start.
      if (chain && (total_steps <= 0 || int64_t(points.size()) * 2 * steps > total_steps)) {
        chain = false;
        std::printf("threadsplit: --autotune: the run (%lld steps) is too short to hold the trials; "
                    "they are separate runs, all cost\n", (long long)total_steps);
      }
    }
    if (f.ok) {
      step_s[i] = double(p.global_batch) / f.images_per_s;
      overhead_sum += std::max(0.0, wall - double(steps) * step_s[i]);
      if (chain) {
        trained += steps;
        from = stem + ".ckpt";
      }
      std::remove(run.log_path.c_str());
    } else {
      scratch.keep = true;
    }
    f.repeat = round;
    std::printf("threadsplit: --autotune: %s, %d steps%s: %s\n", p.label().c_str(), steps,
                chain && f.ok ? " (count toward the run)" : "",
                f.ok ? (std::to_string(int(f.images_per_s + 0.5)) + " img/s").c_str()
                     : ("failed: " + f.error + " (log " + run.log_path + ")").c_str());
    std::fflush(stdout);
    figures[i].push_back(f);
    return f.ok;
  };
  auto best_step_s = [&] {
    double b = 0;
    for (double s : step_s)
      if (s > 0 && (b == 0 || s < b)) b = s;
    return b;
  };
  auto net_cost = [&] { return (now_seconds() - start) - double(trained) * best_step_s(); };
  auto budget_s = [&] { return o.autotune_budget * double(total_steps) * best_step_s(); };
  // Whether one more trial of point i with `steps` steps stays within budget, time and run.
  auto affordable = [&](size_t i, int steps, std::string* why) {
    const double overhead = trial_count ? overhead_sum / trial_count : 1.0;
    const double per_step = step_s[i] > 0 ? step_s[i] : best_step_s();
    const double cost = overhead + double(steps) * (chain ? per_step - best_step_s() : per_step);
    if (now_seconds() - start + overhead + steps * per_step > o.autotune_time_s) {
      *why = "another trial would pass the " + std::to_string(int(o.autotune_time_s)) + " s cap (--autotune-time)";
      return false;
    }
    if (total_steps > 0 && net_cost() + cost > budget_s()) {
      *why = "another trial would pass the budget of " + pct_text(o.autotune_budget) + " of the run (" +
             seconds_text(budget_s()) + ", --autotune-budget)";
      return false;
    }
    if (chain && 2 * (trained + steps) > total_steps) {
      *why = "the trials would take over half of the run";
      return false;
    }
    return true;
  };

  // Rung 0: every split once (whatever the budget: an unmeasured split cannot be chosen).
  int timed = o.autotune_steps > 0 ? o.autotune_steps : 5;
  std::vector<int> alive;
  std::string stopped;
  int round = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    trial(i, timed, round);
    if (i == 0 && o.autotune_steps == 0 && step_s[0] > 0)  // about a second's worth from here on
      timed = std::max(5, std::min(300, int(1.0 / step_s[0] + 0.5)));
  }
  auto rung = [&](const std::vector<int>& ids) {
    std::vector<std::pair<int, double>> ips;
    for (int i : ids)
      ips.push_back({i, figures[size_t(i)].back().ok ? figures[size_t(i)].back().images_per_s : 0});
    return halve(ips);
  };
  std::vector<int> all;
  for (size_t i = 0; i < points.size(); ++i) all.push_back(int(i));
  alive = rung(all);
  if (alive.empty()) {
    throw std::runtime_error("--autotune: no split completed a trial (see the lines above)");
  }
  // Halving with trials twice as long, down to two.
  while (alive.size() > 2 && stopped.empty()) {
    timed *= 2;
    ++round;
    for (size_t k = 0; k < alive.size() && stopped.empty(); ++k) {
      const size_t i = size_t(alive[round % 2 ? alive.size() - 1 - k : k]);
      std::string why;
      if (!affordable(i, warmup + timed, &why)) stopped = why;
      else trial(i, timed, round);
    }
    if (stopped.empty()) alive = rung(alive);
  }
  // The last two in paired rounds until the verdict is clear.
  GroupSummary pick;
  auto pick_among = [&](const std::vector<int>& ids) {
    std::vector<PointResult> r;
    for (int i : ids) r.push_back(aggregate(points[size_t(i)], figures[size_t(i)]));
    // aggregate keeps the point's index; summarize's best/runner_up are point indices.
    return autotune_pick(r);
  };
  pick = pick_among(alive);
  while (stopped.empty() && alive.size() == 2) {
    if (pick.verdict == Verdict::real || pick.verdict == Verdict::tie) {
      stopped = std::string(pick.verdict == Verdict::real ? "clear" : "a measured tie") + " after " +
                std::to_string(pick.paired.rounds) + " paired rounds";
      break;
    }
    if (pick.paired.rounds >= o.autotune_rounds) {
      stopped = "not clear after " + std::to_string(pick.paired.rounds) + " paired rounds (--autotune-rounds)";
      break;
    }
    ++round;
    for (size_t k = 0; k < 2 && stopped.empty(); ++k) {
      const size_t i = size_t(alive[round % 2 ? 1 - k : k]);
      std::string why;
      if (!affordable(i, warmup + timed, &why)) stopped = why + " (not clear after " +
                                                          std::to_string(pick.paired.rounds) + " paired rounds)";
      else trial(i, timed, round);
    }
    pick = pick_among(alive);
  }
  if (stopped.empty()) stopped = "one split left";
  if (pick.best < 0) {
    throw std::runtime_error("--autotune: no split completed a trial (see the lines above)");
  }
  choice.results.clear();
  for (size_t i = 0; i < points.size(); ++i) choice.results.push_back(aggregate(points[i], figures[i]));
  const SweepPoint& best = points[size_t(pick.best)];
  choice.procs = best.procs;
  choice.threads = best.threads;
  choice.inter_op = best.inter_op;
  choice.seconds = now_seconds() - start;
  const double chosen_step_s = step_s[size_t(pick.best)] > 0 ? step_s[size_t(pick.best)] : best_step_s();
  choice.trained_steps = chain ? trained : 0;
  choice.continue_from = chain ? from : "";
  choice.cost_s = std::max(0.0, choice.seconds - double(choice.trained_steps) * chosen_step_s);
  choice.planned_run_s = double(total_steps) * chosen_step_s;
  std::string cost = std::to_string(trial_count) + " trials, " + seconds_text(choice.seconds);
  if (choice.trained_steps > 0)
    cost += ", of which " + seconds_text(double(choice.trained_steps) * chosen_step_s) + " trained " +
            std::to_string(choice.trained_steps) + " steps that count toward the run";
  cost += ": net cost " + seconds_text(choice.cost_s);
  if (choice.planned_run_s > 0)
    cost += ", " + pct_text(choice.cost_s / choice.planned_run_s) + " of the planned " +
            seconds_text(choice.planned_run_s) + " run (budget " + pct_text(o.autotune_budget) + ")";
  choice.scratch_dir = scratch.keep ? "" : dir;
  scratch.handed_over = true;
  choice.reason = "--autotune chose " + best.label() + " by measurement (" + stopped + "; " + cost +
                  "): " + pick.text;
  return choice;
}

}  // namespace ts
