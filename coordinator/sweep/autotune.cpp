#include "autotune.h"

#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "core_set.h"
#include "sweep_plan.h"
#include "timing.h"
#include "stop_signals.h"
#include "trial_runner.h"

namespace ts {

GroupSummary autotune_pick(const std::vector<PointResult>& results) {
  const std::vector<GroupSummary> g = summarize(results);
  if (g.empty() || g.front().best < 0) return GroupSummary{};
  return g.front();
}

AutotuneChoice autotune(const RunOptions& o, const std::string& exe) {
  const CoreSet cores = o.cores.empty() ? CoreSet::of_this_process() : CoreSet::parse(o.cores);
  const int n = cores.size();
  std::vector<SweepPoint> points;
  for (const auto& [P, T] : splits_of(n)) {
    SweepPoint p;
    p.index = int(points.size());
    p.model = o.model;
    p.batch_mode = o.batch_per_worker > 0 ? "per_worker" : "global";
    p.subscription = "full";
    p.procs = P;
    p.threads = T;
    p.cores = n;
    p.loader_threads = o.loader_threads;
    p.batch_per_worker = o.batch_per_worker;
    p.global_batch = o.batch_per_worker > 0 ? o.batch_per_worker * P : o.batch;
    p.steps = o.autotune_steps;
    p.warmup_steps = o.warmup_steps > 0 ? o.warmup_steps : 5;  // as the sweep
    points.push_back(p);
  }
  std::printf("threadsplit: --autotune: trying %zu splits of %d cores (%s), %d warm-up steps and "
              "%s timed ones each, rounds until the winner is clear (2..%d) or %.0f s\n",
              points.size(), n, cores.to_string().c_str(), points.front().warmup_steps,
              o.autotune_steps > 0 ? std::to_string(o.autotune_steps).c_str() : "about 2 s of",
              o.autotune_rounds, o.autotune_time_s);
  std::fflush(stdout);

  AutotuneChoice choice;
  if (points.size() == 1) {
    choice.procs = points[0].procs;
    choice.threads = points[0].threads;
    choice.reason = "one core: 1 x 1 is the only split";
    return choice;
  }
  char dir_template[] = "/tmp/threadsplit-autotune-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (!dir) throw std::runtime_error("--autotune: cannot create a temporary directory in /tmp");

  // One trial of point p; a trial that shared the machine with other programs (more than a
  // fifth of its CPU) is run once more, since interference only ever slows a trial down.
  auto trial = [&](const SweepPoint& p, const std::string& tag, const std::string& shown) {
    TrialRun run;
    run.args = point_args(p);
    const std::vector<std::string> more = {"--data", o.data, "--seed", std::to_string(o.seed),
                                           "--augment", o.augment, "--optimizer", o.optimizer,
                                           "--lr", std::to_string(o.lr)};
    run.args.insert(run.args.end(), more.begin(), more.end());
    if (!o.cores.empty()) run.args.insert(run.args.end(), {"--cores", o.cores});
    if (!o.worker_bin.empty()) run.args.insert(run.args.end(), {"--worker-bin", o.worker_bin});
    if (o.optimizer == "sgd") run.args.insert(run.args.end(), {"--momentum", std::to_string(o.momentum)});
    const std::string stem = std::string(dir) + "/" + std::to_string(p.procs) + "x" +
                             std::to_string(p.threads) + "_" + tag;
    run.report_path = stem + ".json";
    run.log_path = stem + ".log";
    run.timeout_s = std::max(60.0, o.autotune_time_s);
    TrialFigures f;
    for (int attempt = 0; attempt < 2; ++attempt) {
      f = run_trial(exe, run);
      // A stop signal ends the autotune here (the trial in flight was passed the signal).
      throw_if_stop_requested();
      if (f.ok) {
        std::remove(run.report_path.c_str());
        std::remove(run.log_path.c_str());
      }
      if (!f.ok || f.foreign_cpu_share <= 0.2 || attempt == 1) break;
      std::printf("threadsplit: --autotune: %s %s: %.0f img/s while other programs took %.0f%% of "
                  "the CPU; once more\n", p.label().c_str(), shown.c_str(), f.images_per_s,
                  100 * f.foreign_cpu_share);
    }
    return f;
  };

  // Trials of about 2 s unless --autotune-steps says otherwise: long enough that a step's
  // jitter averages out, short enough for several rounds.
  if (o.autotune_steps == 0) {
    SweepPoint probe = points.back();
    probe.steps = 10;
    const TrialFigures f = trial(probe, "probe", "probe");
    const double step_s = f.ok && f.images_per_s > 0 ? probe.global_batch / f.images_per_s : 0.1;
    const int steps = std::max(10, std::min(300, int(2.0 / step_s + 0.5)));
    for (SweepPoint& p : points) p.steps = steps;
    std::printf("threadsplit: --autotune: a step takes about %.0f ms, so each trial times %d steps\n",
                1000 * step_s, steps);
  }

  std::vector<std::vector<TrialFigures>> figures(points.size());
  const double start = now_seconds();
  std::string stopped;
  int rounds = 0;
  double round_s = 0;
  GroupSummary pick;
  for (int round = 0; round < o.autotune_rounds; ++round) {
    const double round_start = now_seconds();
    for (size_t k = 0; k < points.size(); ++k) {
      // Alternate direction per round, as the sweep does, so drift hits every split alike.
      const size_t i = round % 2 == 0 ? k : points.size() - 1 - k;
      const SweepPoint& p = points[i];
      TrialFigures f = trial(p, "round" + std::to_string(round + 1), "round " + std::to_string(round + 1));
      f.repeat = round;
      std::printf("threadsplit: --autotune: %s round %d: %s\n", p.label().c_str(), round + 1,
                  f.ok ? (std::to_string(int(f.images_per_s + 0.5)) + " img/s").c_str()
                       : ("failed: " + f.error).c_str());
      std::fflush(stdout);
      figures[i].push_back(f);
    }
    rounds = round + 1;
    round_s = now_seconds() - round_start;
    choice.results.clear();
    for (size_t i = 0; i < points.size(); ++i) choice.results.push_back(aggregate(points[i], figures[i]));
    pick = autotune_pick(choice.results);
    if (rounds >= 2 && pick.decisive) {
      stopped = "clear after " + std::to_string(rounds) + " rounds";
      break;
    }
    if (rounds >= o.autotune_rounds) {
      stopped = "stopped after the last of " + std::to_string(rounds) + " rounds";
      break;
    }
    if (now_seconds() - start + round_s > o.autotune_time_s) {
      stopped = "stopped after " + std::to_string(rounds) + " round(s): another would pass the " +
                std::to_string(int(o.autotune_time_s)) + " s cap (--autotune-time)";
      break;
    }
  }
  rmdir(dir);  // empty unless a trial failed (its log is kept then)
  if (pick.best < 0) throw std::runtime_error("--autotune: no split completed a trial (logs in " + std::string(dir) + ")");
  const SweepPoint& best = points[size_t(pick.best)];
  choice.procs = best.procs;
  choice.threads = best.threads;
  choice.reason = "--autotune chose " + best.label() + " by measurement (" + stopped + ", " +
                  std::to_string(int(now_seconds() - start + 0.5)) + " s): " + pick.text;
  return choice;
}

}  // namespace ts
