#include "sweep_command.h"

#include "placement.h"
#include "topology.h"

#include <sys/stat.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "atomic_file.h"
#include "build_info.h"
#include "cli_flags.h"
#include "core_set.h"
#include "json_io.h"
#include "process_facts.h"
#include "stop_signals.h"
#include "sweep_plan.h"
#include "sweep_report.h"
#include "timing.h"
#include "trial_runner.h"

namespace ts {

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ",") + n;
  return s;
}

}  // namespace

std::unique_ptr<CLI::App> sweep_app(SweepArgs& a) {
  using cli::at_least;
  auto app = cli::new_app(
      "threadsplit sweep", "usage: threadsplit sweep --data DIR [flags]\n",
      "Measures every split P x T = N of the core budget N, for each model and batch mode, in R "
      "interleaved rounds (every point once a round), and writes OUT/sweep.csv, OUT/sweep.json "
      "and a summary: the best split, its margin over the runner-up, and the paired verdict "
      "(per round the ratio of the two; real when the 95% interval of that ratio lies above 1, "
      "a tie when it lies within +-tolerance). "
      "SIGINT, SIGTERM or SIGHUP stop the trial in flight and then the sweep (exit 128 + signo).");
  CLI::App& f = *app;
  // Lists go through callbacks that throw std::invalid_argument naming the flag (sweep_plan.h).
  std::string steps;
  for (const auto& [model, n] : a.sweep.steps)
    steps += (steps.empty() ? "" : ",") + model + "=" + std::to_string(n);
  std::string loader_threads;
  for (int n : a.sweep.loader_threads)
    loader_threads += (loader_threads.empty() ? "" : ",") + std::to_string(n);
  cli::group(f, "Flags");
  f.add_option("--data", a.data, "CIFAR-10 binary version; required")->type_name("DIR");
  f.add_option("--out", a.out, "results directory")->type_name("DIR")->capture_default_str();
  f.add_option("--cores", a.cores, "the budget (default: every core this process may use)")
      ->type_name("LIST");
  f.add_option("--placement", a.placement,
               "every trial's placement (threadsplit --help); the plan splits the physical cores "
               "(--smt avoid) or hardware threads (--smt use) of the budget's topology")
      ->type_name("numa|compact|spread")->check(cli::one_of({"numa", "compact", "spread"}))->capture_default_str();
  f.add_option("--smt", a.smt, "every trial's --smt")
      ->type_name("avoid|use")->check(cli::one_of({"avoid", "use"}))->capture_default_str();
  f.add_option_function<std::string>(
       "--models", [&a](const std::string& v) { a.sweep.models = parse_name_list(v); },
       "the networks to measure: built-in names and ONNX model files (FILE.onnx, trained with "
       "--model-file)")
      ->type_name("A,B")->default_str(joined(a.sweep.models));
  f.add_option_function<std::string>(
       "--batch-modes", [&a](const std::string& v) { a.sweep.batch_modes = parse_name_list(v); },
       "global (fixed global batch) and/or per_worker")
      ->type_name("M,M")->default_str(joined(a.sweep.batch_modes));
  f.add_option("--batch", a.sweep.batch, "global batch")
      ->type_name("B")->transform(at_least(1, 4096))->capture_default_str();
  f.add_option("--batch-per-worker", a.sweep.batch_per_worker,
               "per-worker batch in per_worker mode (default: batch / N)")
      ->type_name("B")->transform(at_least(1, 4096));
  f.add_option_function<std::string>(
       "--steps", [&a](const std::string& v) { parse_steps(v, a.sweep); },
       "timed steps per run, for every model or per model")
      ->type_name("N|M=N,M=N")->default_str(steps);
  f.add_option("--warmup-steps", a.sweep.warmup_steps, "untimed steps first")
      ->type_name("N")->transform(at_least(0, 4096))->capture_default_str();
  f.add_option("--repeats", a.sweep.repeats, "rounds (runs of every point); with --until-clear, at least")
      ->type_name("R")->transform(at_least(1, 4096))->capture_default_str();
  f.add_flag("--until-clear", a.sweep.until_clear,
             "add rounds until every model's top two are decided (real, or a tie within "
             "--tolerance), up to --max-rounds and --time-budget");
  f.add_option("--max-rounds", a.sweep.max_rounds, "--until-clear's most rounds")
      ->type_name("R")->transform(at_least(2, 4096))->capture_default_str();
  f.add_option("--time-budget", a.sweep.time_budget_s,
               "--until-clear starts no round that would end after S seconds of sweep")
      ->type_name("S")->transform(cli::positive())->capture_default_str();
  f.add_option("--tolerance", a.sweep.tolerance,
               "two splits whose paired interval lies within +-X are a measured tie")
      ->type_name("X")->transform(cli::real_in(0.001, 0.5))->capture_default_str();
  f.add_flag("--under", a.sweep.under, "also P x T = N/2 on the first N/2 cores");
  f.add_flag("--over", a.sweep.over, "also P x T = 2N (oversubscribed)");
  f.add_option_function<std::string>(
       "--inter-op",
       [&a](const std::string& v) { a.sweep.inter_op = parse_int_list("--inter-op", v); },
       "inter-op teams per worker to try, I,I (each that divides the cores adds P x I x T = N)")
      ->type_name("I,I")->default_str("1,2");
  f.add_option_function<std::string>(
       "--loader-threads",
       [&a](const std::string& v) { a.sweep.loader_threads = parse_int_list("--loader-threads", v); },
       "loader thread counts to try")
      ->type_name("L,L")->default_str(loader_threads);
  f.add_option("--seed", a.seed, "every run's --seed")
      ->type_name("N")->transform(at_least(0, cli::kInt64Max))->capture_default_str();
  f.add_option("--trial-timeout", a.trial_timeout_s, "kill a run after S seconds")
      ->type_name("S")->transform(cli::positive())->capture_default_str();
  f.add_option("--busy-share", a.busy_share,
               "a run during which other programs took more than this share of the machine's CPU "
               "is run again ...")
      ->type_name("X")->transform(cli::real_in(0, 1))->capture_default_str();
  f.add_option("--busy-retries", a.busy_retries, "... at most N times; 0: never")
      ->type_name("N")->transform(at_least(0, 4096))->capture_default_str();
  f.add_option("--worker-bin", a.worker_bin, "threadsplit_worker to use (default: beside threadsplit)")
      ->type_name("PATH");
  cli::add_help(f, "Flags");
  return app;
}

SweepArgs parse_sweep_args(int argc, char** argv) {
  SweepArgs a;
  const auto app = sweep_app(a);
  a.help = !cli::parse(*app, argc, argv, 2);
  if (!a.help && a.data.empty()) throw UsageError("--data DIR is required");
  return a;
}

std::string sweep_usage_text() {
  SweepArgs defaults;
  return sweep_app(defaults)->help();
}

namespace {

void write_file(const std::string& path, const std::string& text) {
  try {
    write_file_atomically(path, text);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot write " + path + ": " + e.what());
  }
}

}  // namespace

int sweep_main(int argc, char** argv) {
  SweepArgs a;
  try {
    a = parse_sweep_args(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "threadsplit sweep: %s\n", e.what());
    return 2;
  }
  if (a.help) {
    std::fputs(sweep_usage_text().c_str(), stdout);
    return 0;
  }
  const double start = now_seconds();
  // A stop signal is passed on to the trial in flight, which stops after its step; then the
  // sweep stops too (a second signal kills the trial and stops at once).
  install_stop_signals("threadsplit sweep");
  watch_stop_request(true, "stopping the trial in flight, then the sweep");
  CoreSet budget, units;
  std::vector<SweepPoint> points;
  try {
    budget = a.cores.empty() ? CoreSet::of_this_process() : CoreSet::parse(a.cores);
    // The plan splits what a trial's placement would use: the budget's physical cores
    // (--smt avoid) or its hardware threads, in topology order, so that a trial on fewer
    // cores (--under) gets whole cores, the first of the topology.
    const Topology t = Topology::of_this_machine().restricted_to(budget);
    units = placement_units(t, parse_smt(a.smt));
    points = plan_points(a.sweep, units.size());
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "threadsplit sweep: %s\n", e.what());
    return 2;
  }
  const std::string trials_dir = a.out + "/trials";
  mkdir(a.out.c_str(), 0755);
  mkdir(trials_dir.c_str(), 0755);
  struct stat st {};
  if (stat(trials_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "threadsplit sweep: cannot create %s\n", trials_dir.c_str());
    return 2;
  }

  const size_t planned = points.size() * size_t(a.sweep.repeats);
  std::printf("threadsplit sweep: %zu points x %d rounds = %zu runs%s on cores %s, interleaved; "
              "results in %s\n", points.size(), a.sweep.repeats, planned,
              a.sweep.until_clear ? (", then rounds until every verdict is clear (at most " +
                                     std::to_string(a.sweep.max_rounds) + " rounds, " +
                                     std::to_string(int(a.sweep.time_budget_s)) + " s)").c_str()
                                  : "",
              budget.to_string().c_str(), a.out.c_str());
  std::fflush(stdout);
  const std::string exe = self_executable();
  std::vector<std::vector<TrialFigures>> figures(points.size());
  std::string first_report_path;
  std::string stopped;
  int rounds = 0, runs = 0;
  int stop_sig = 0;  // a stop signal's number once one stopped the sweep
  for (int round = 0;; ++round) {
    const double round_start = now_seconds();
    // Runs planned so far, for the [k/total] lines: rounds past --repeats come one at a time.
    const size_t total = round >= a.sweep.repeats ? points.size() * size_t(round + 1) : planned;
    for (const Trial& t : round_order(int(points.size()), round, runs)) {
      const SweepPoint& p = points[size_t(t.point)];
      // The whole budget for a split of all of it (its siblings stay for --over's threads),
      // else its first units.
      const CoreSet cores = p.cores >= units.size()
                                ? budget
                                : CoreSet(std::vector<int>(units.cores().begin(), units.cores().begin() + p.cores));
      TrialRun run;
      run.args = point_args(p);
      for (const std::string& x : {std::string("--data"), a.data, std::string("--cores"),
                                  cores.sorted().to_string(), std::string("--seed"),
                                  std::to_string(a.seed), std::string("--placement"), a.placement,
                                  std::string("--smt"), a.smt})
        run.args.push_back(x);
      if (!a.worker_bin.empty()) {
        run.args.push_back("--worker-bin");
        run.args.push_back(a.worker_bin);
      }
      const std::string stem = trials_dir + "/p" + std::to_string(p.index) + "_r" + std::to_string(t.repeat);
      run.report_path = stem + ".json";
      run.log_path = stem + ".log";
      run.timeout_s = a.trial_timeout_s;
      TrialFigures f = run_trial(exe, run);
      // Another program's burst only ever slows a trial: run a contended one again (a bounded
      // number of times) rather than let it drag a point's median.
      for (int retry = 0; retry < a.busy_retries && f.ok && f.foreign_cpu_share > a.busy_share; ++retry) {
        std::printf("[%3d/%zu] %s %s repeat %d: %.0f img/s while other programs took %.0f%% of the "
                    "CPU; once more\n", t.order + 1, total, p.model.c_str(), p.label().c_str(),
                    t.repeat + 1, f.images_per_s, 100 * f.foreign_cpu_share);
        std::fflush(stdout);
        f = run_trial(exe, run);
      }
      if (const int sig = stop_signal()) {
        // The runs done so far are kept as a partial sweep (the one in flight is left out).
        std::fprintf(stderr, "threadsplit sweep: %s: stopped during run %d of %zu (%s %s repeat %d); "
                    "%d run(s) done, their reports are in %s; %s\n",
                    signal_name(sig).c_str(), t.order + 1, total, p.model.c_str(),
                    p.label().c_str(), t.repeat + 1, runs, trials_dir.c_str(),
                    runs > 0 ? ("they are written as a partial sweep to " + a.out + "/sweep.csv and sweep.json").c_str()
                             : "no sweep.csv or sweep.json written");
        if (runs == 0) return 128 + sig;
        stop_sig = sig;
        stopped = "stopped by " + signal_name(sig) + " during run " + std::to_string(t.order + 1) + " of " +
                  std::to_string(total) + ": a partial sweep of " + std::to_string(runs) + " runs";
        break;
      }
      f.repeat = t.repeat;
      f.order = t.order;
      if (f.ok && first_report_path.empty()) first_report_path = run.report_path;
      std::printf("[%3d/%zu] %-16s %-10s %-10s repeat %d: ", t.order + 1, total,
                  p.model.c_str(), p.batch_mode.c_str(), p.label().c_str(), t.repeat + 1);
      if (f.ok) std::printf("%.0f img/s\n", f.images_per_s);
      else std::printf("FAILED: %s\n", f.error.c_str());
      std::fflush(stdout);
      figures[size_t(t.point)].push_back(std::move(f));
      ++runs;
    }
    rounds = round + 1;
    if (stop_sig) {
      rounds = runs > int(points.size()) * round ? round + 1 : round;  // the rounds begun
      break;
    }
    if (rounds < a.sweep.repeats) continue;
    if (!a.sweep.until_clear) {
      stopped = std::to_string(rounds) + " rounds, as asked";
      break;
    }
    std::vector<PointResult> so_far;
    for (size_t i = 0; i < points.size(); ++i) so_far.push_back(aggregate(points[i], figures[i]));
    const std::vector<GroupSummary> g = summarize(so_far, a.sweep.tolerance);
    std::string open;
    for (const GroupSummary& x : g) {
      if (x.runner_up < 0 || x.verdict == Verdict::real || x.verdict == Verdict::tie) continue;
      char interval[64];
      std::snprintf(interval, sizeof interval, "%.3f..%.3f", x.paired.lo, x.paired.hi);
      open += (open.empty() ? "" : ", ") + x.model + " " + x.batch_mode + " (" +
              points[size_t(x.best)].label() + "/" + points[size_t(x.runner_up)].label() + " " +
              interval + ")";
    }
    if (open.empty()) {
      stopped = "clear after " + std::to_string(rounds) + " rounds";
      break;
    }
    if (rounds >= a.sweep.max_rounds) {
      stopped = "not clear after the last of " + std::to_string(rounds) + " rounds (--max-rounds): " + open;
      break;
    }
    const double round_s = now_seconds() - round_start;
    if (now_seconds() - start + round_s > a.sweep.time_budget_s) {
      stopped = "not clear after " + std::to_string(rounds) + " rounds: another would pass the " +
                std::to_string(int(a.sweep.time_budget_s)) + " s budget (--time-budget): " + open;
      break;
    }
    std::printf("threadsplit sweep: after %d rounds still open: %s; one more round\n", rounds, open.c_str());
    std::fflush(stdout);
  }

  std::vector<PointResult> results;
  for (size_t i = 0; i < points.size(); ++i) results.push_back(aggregate(points[i], figures[i]));
  const std::vector<GroupSummary> groups = summarize(results, a.sweep.tolerance);
  const std::vector<std::string> contrast = model_contrast(results, groups);

  SweepFacts facts;
  const MachineFacts m = machine_facts();
  facts.cpu_model = m.cpu_model;
  facts.hostname = m.hostname;
  facts.online_cores = m.online_cores;
  facts.memory_bytes = m.memory_bytes;
  facts.grpc = grpc_version();
  facts.protobuf = protobuf_version();
  facts.compiler = compiler_version();
  facts.cores = budget.to_string();
  facts.data_dir = a.data;
  if (!first_report_path.empty()) {
    try {
      const JsonNode r = read_json_file(first_report_path);
      facts.onednn = r["versions"]["onednn"].str();
      facts.data_dir = r["data"]["dir"].str();
      facts.synthetic_data = r["data"]["synthetic"].boolean();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit sweep: sweep.json's versions and data may be incomplete: %s\n",
                   e.what());
    }
  }
  facts.wall_seconds = now_seconds() - start;
  facts.rounds = rounds;
  facts.stopped = stopped;
  facts.partial = stop_sig != 0;
  try {
    write_file(a.out + "/sweep.csv", sweep_csv(results));
    write_file(a.out + "/sweep.json", sweep_json(facts, a.sweep, results, groups, contrast));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit sweep: %s\n", e.what());
    return 1;
  }
  std::printf("\n%s", sweep_summary_text(results, groups, contrast).c_str());
  if (facts.synthetic_data)
    std::printf("(SYNTHETIC data: speeds are real, nothing else is)\n");
  std::printf("\nwrote %s/sweep.csv and %s/sweep.json (%d runs in %d rounds, %s; %.0f s)\n",
              a.out.c_str(), a.out.c_str(), runs, rounds, stopped.c_str(), facts.wall_seconds);
  if (stop_sig) {
    std::printf("(PARTIAL: %s)\n", stopped.c_str());
    return 128 + stop_sig;
  }
  int failed_points = 0;
  for (const PointResult& r : results) failed_points += r.ok_trials == 0;
  return failed_points == int(results.size()) ? 1 : 0;
}

}  // namespace ts
