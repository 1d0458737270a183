#include "sweep_command.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "atomic_file.h"
#include "build_info.h"
#include "core_set.h"
#include "json_io.h"
#include "process_facts.h"
#include "sweep_plan.h"
#include "sweep_report.h"
#include "timing.h"
#include "trial_runner.h"

namespace ts {

namespace {

const char* kUsage =
    "usage: threadsplit sweep --data DIR [flags]\n\n"
    "Measures every split P x T = N of the core budget N, for each model and batch mode,\n"
    "R repeats in interleaved order, and writes OUT/sweep.csv, OUT/sweep.json and a summary:\n"
    "the best split, its margin over the runner-up, and whether that beats the run-to-run spread.\n\n"
    "  --data DIR               CIFAR-10 binary version (required)\n"
    "  --out DIR                results directory (default sweep-results)\n"
    "  --cores LIST             the budget (default: every core this process may use)\n"
    "  --models A,B             (default seed_cnn,tf_tutorial_cnn)\n"
    "  --batch-modes M,M        global (fixed global batch) and/or per_worker (default both)\n"
    "  --batch B                global batch (default 128)\n"
    "  --batch-per-worker B     per-worker batch in per_worker mode (default batch / N)\n"
    "  --steps N | M=N,M=N      timed steps per run (default seed_cnn=200,tf_tutorial_cnn=40)\n"
    "  --warmup-steps N         untimed steps first (default 5)\n"
    "  --repeats R              (default 3)\n"
    "  --under                  also P x T = N/2 on the first N/2 cores\n"
    "  --over                   also P x T = 2N (oversubscribed)\n"
    "  --loader-threads L,L     loader thread counts to try (default 1)\n"
    "  --seed N                 (default 1)\n"
    "  --trial-timeout S        kill a run after S seconds (default 600)\n"
    "  --busy-share X           a run during which other programs took more than this share\n"
    "                           of the machine's CPU is run again (default 0.2) ...\n"
    "  --busy-retries N         ... at most N times (default 1; 0: never)\n"
    "  --worker-bin PATH        threadsplit_worker to use\n";

struct SweepArgs {
  SweepOptions sweep;
  std::string data, out = "sweep-results", cores, worker_bin;
  uint64_t seed = 1;
  double trial_timeout_s = 600;
  double busy_share = 0.2;   // a trial with more foreign CPU than this is run again ...
  int busy_retries = 1;      // ... at most this many times
};

SweepArgs parse(int argc, char** argv) {
  SweepArgs a;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") throw std::invalid_argument("");
    else if (flag == "--data") a.data = value();
    else if (flag == "--out") a.out = value();
    else if (flag == "--cores") a.cores = value();
    else if (flag == "--models") a.sweep.models = parse_name_list(value());
    else if (flag == "--batch-modes") a.sweep.batch_modes = parse_name_list(value());
    else if (flag == "--batch") a.sweep.batch = parse_int_list(flag, value()).at(0);
    else if (flag == "--batch-per-worker") a.sweep.batch_per_worker = parse_int_list(flag, value()).at(0);
    else if (flag == "--steps") parse_steps(value(), a.sweep);
    else if (flag == "--warmup-steps") {
      const std::string v = value();
      a.sweep.warmup_steps = v == "0" ? 0 : parse_int_list(flag, v).at(0);
    }
    else if (flag == "--repeats") a.sweep.repeats = parse_int_list(flag, value()).at(0);
    else if (flag == "--under") a.sweep.under = true;
    else if (flag == "--over") a.sweep.over = true;
    else if (flag == "--loader-threads") a.sweep.loader_threads = parse_int_list(flag, value());
    else if (flag == "--seed") a.seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (flag == "--trial-timeout") a.trial_timeout_s = std::atof(value().c_str());
    else if (flag == "--worker-bin") a.worker_bin = value();
    else if (flag == "--busy-retries") {
      const std::string v = value();
      a.busy_retries = v == "0" ? 0 : parse_int_list(flag, v).at(0);
    }
    else if (flag == "--busy-share") a.busy_share = std::atof(value().c_str());
    else throw std::invalid_argument("unknown argument '" + flag + "' (see threadsplit sweep --help)");
  }
  if (a.data.empty()) throw std::invalid_argument("--data DIR is required");
  if (!(a.trial_timeout_s > 0)) throw std::invalid_argument("--trial-timeout must be positive");
  return a;
}

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
    a = parse(argc, argv);
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).empty()) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "threadsplit sweep: %s\n", e.what());
    return 2;
  }
  const double start = now_seconds();
  CoreSet budget;
  std::vector<SweepPoint> points;
  try {
    budget = a.cores.empty() ? CoreSet::of_this_process() : CoreSet::parse(a.cores);
    points = plan_points(a.sweep, budget.size());
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

  const std::vector<Trial> order = interleave(int(points.size()), a.sweep.repeats);
  std::printf("threadsplit sweep: %zu points x %d repeats = %zu runs on cores %s, interleaved; "
              "results in %s\n", points.size(), a.sweep.repeats, order.size(),
              budget.to_string().c_str(), a.out.c_str());
  std::fflush(stdout);
  const std::string exe = self_executable();
  std::vector<std::vector<TrialFigures>> figures(points.size());
  std::string first_report_path;
  for (const Trial& t : order) {
    const SweepPoint& p = points[size_t(t.point)];
    std::vector<int> cores(budget.cores().begin(), budget.cores().begin() + p.cores);
    TrialRun run;
    run.args = point_args(p);
    for (const std::string& x : {std::string("--data"), a.data, std::string("--cores"),
                                 CoreSet(cores).to_string(), std::string("--seed"),
                                 std::to_string(a.seed)})
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
                  "CPU; once more\n", t.order + 1, order.size(), p.model.c_str(), p.label().c_str(),
                  t.repeat + 1, f.images_per_s, 100 * f.foreign_cpu_share);
      std::fflush(stdout);
      f = run_trial(exe, run);
    }
    f.repeat = t.repeat;
    f.order = t.order;
    if (f.ok && first_report_path.empty()) first_report_path = run.report_path;
    std::printf("[%3d/%zu] %-16s %-10s %-10s repeat %d: ", t.order + 1, order.size(),
                p.model.c_str(), p.batch_mode.c_str(), p.label().c_str(), t.repeat + 1);
    if (f.ok) std::printf("%.0f img/s\n", f.images_per_s);
    else std::printf("FAILED: %s\n", f.error.c_str());
    std::fflush(stdout);
    figures[size_t(t.point)].push_back(std::move(f));
  }

  std::vector<PointResult> results;
  for (size_t i = 0; i < points.size(); ++i) results.push_back(aggregate(points[i], figures[i]));
  const std::vector<GroupSummary> groups = summarize(results);
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
  std::printf("\nwrote %s/sweep.csv and %s/sweep.json (%zu runs, %.0f s)\n", a.out.c_str(),
              a.out.c_str(), order.size(), facts.wall_seconds);
  int failed_points = 0;
  for (const PointResult& r : results) failed_points += r.ok_trials == 0;
  return failed_points == int(results.size()) ? 1 : 0;
}

}  // namespace ts
