// threadsplit: the coordinator. Checks the flags and the data set, spawns the workers bound to
// their cores, runs the training loop (coordinator/training_run.h), evaluates, writes the
// checkpoint and the report.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "atomic_file.h"
#include "augment.h"
#include "autotune.h"
#include "checkpoint.h"
#include "checkpoint_store.h"
#include "cifar10.h"
#include "coordinator_priority.h"
#include "core_set.h"
#include "float_packing.h"
#include "grpc_settings.h"
#include "malloc_tuning.h"
#include "membership.h"
#include "network.h"
#include "optimizer.h"
#include "process_facts.h"
#include "progress_display.h"
#include "run_checkpoints.h"
#include "run_options.h"
#include "run_report.h"
#include "server_security.h"
#include "step_timing.h"
#include "sweep_command.h"
#include "synthetic_cifar10.h"
#include "timing.h"
#include "trainer_service.h"
#include "training_run.h"
#include "trial_runner.h"
#include "worker_launcher.h"

namespace {

using namespace ts;

// A problem found before anything started: printed as one sentence, exit status 2.
class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string random_hex(size_t bytes) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!in.read(&raw[0], std::streamsize(bytes))) throw std::runtime_error("cannot read /dev/urandom");
  static const char* const kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : raw) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

std::string absolute_path(const std::string& p) {
  char buf[PATH_MAX];
  if (!realpath(p.c_str(), buf)) return p;
  return buf;
}

void check_writable(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  const std::string dir = parent_directory(path);
  if (access(dir.c_str(), W_OK) != 0)
    throw SetupError(flag + " " + path + ": the directory " + dir + " does not exist or is not writable");
}

std::string find_worker_binary(const std::string& flag_value) {
  std::vector<std::string> candidates;
  if (!flag_value.empty()) {
    if (access(flag_value.c_str(), X_OK) != 0)
      throw SetupError("--worker-bin " + flag_value + " is not an executable file");
    return absolute_path(flag_value);
  }
  if (const char* env = getenv("THREADSPLIT_WORKER_BIN")) candidates.push_back(env);
  const std::string self = absolute_path("/proc/self/exe");
  const std::string dir = parent_directory(self);
  candidates.push_back(dir + "/threadsplit_worker");
  candidates.push_back(dir + "/../worker/threadsplit_worker");
  for (const auto& c : candidates)
    if (access(c.c_str(), X_OK) == 0) return absolute_path(c);
  throw SetupError("cannot find threadsplit_worker beside " + self +
                   " (build it, or name it with --worker-bin)");
}

// Decides P, T and the cores. Throws SetupError.
void resolve_split(RunSetup& s) {
  const RunOptions& o = s.options;
  if (o.external_workers > 0) {
    s.world_size = o.external_workers;
    s.threads = 0;
    s.split_reason = "--external-workers " + std::to_string(o.external_workers) +
                     ": hand-started workers bring their own binding";
    return;
  }
  const CoreSet allowed = CoreSet::of_this_process();
  if (o.cores.empty()) {
    s.cores = allowed;
  } else {
    try {
      s.cores = CoreSet::parse(o.cores);
    } catch (const std::invalid_argument& e) {
      throw SetupError(std::string("--cores: ") + e.what());
    }
    const auto& ok = allowed.cores();
    for (int c : s.cores.cores())
      if (std::find(ok.begin(), ok.end(), c) == ok.end())
        throw SetupError("--cores names core " + std::to_string(c) +
                         ", which this process may not run on (allowed: " + allowed.to_string() + ")");
  }
  const int n = s.cores.size();
  int P = o.procs, T = o.threads;
  if (P == 0 && T == 0) {
    P = 1;
    T = n;
    s.split_reason = "default: one worker using every core";
  } else if (T == 0) {
    T = std::max(1, n / P);
    s.split_reason = "--procs " + std::to_string(P) + ": threads = cores / procs";
  } else if (P == 0) {
    P = std::max(1, n / T);
    s.split_reason = "--threads " + std::to_string(T) + ": procs = cores / threads";
  } else {
    s.split_reason = o.split_chosen_by.empty() ? "--procs and --threads as given" : o.split_chosen_by;
  }
  s.world_size = P;
  s.threads = T;
  s.oversubscribed = int64_t(P) * T > n;
  for (int r = 0; r < P; ++r) s.worker_cores.push_back(s.cores.slice(r, T));
}

struct Prepared {
  RunSetup setup;
  std::vector<float> params;
  std::unique_ptr<Optimizer> optimizer;
  int64_t step = 0, epoch = 0, step_in_epoch = 0;
  std::string worker_bin;
  std::optional<CheckpointStore> store;  // --checkpoint-dir
  bool nothing_left = false;             // --resume found the run already at --steps
};

// Everything that can be checked before a process starts or a port opens.
Prepared prepare(const RunOptions& o) {
  Prepared p;
  RunSetup& s = p.setup;
  s.options = o;
  // --model, --augment and the optimizer flags were checked by validate_options.
  s.net = build_network(o.model);
  s.optimizer.kind = o.optimizer;
  s.optimizer.learning_rate = o.lr;
  s.optimizer.momentum = o.momentum;
  resolve_split(s);
  s.global_batch = o.batch_per_worker > 0 ? o.batch_per_worker * s.world_size : o.batch;
  if (s.global_batch < s.world_size)
    throw SetupError("the global batch (" + std::to_string(s.global_batch) + ") is smaller than the " +
                     std::to_string(s.world_size) + " workers: every worker needs a sample per step");
  s.split = keras_validation_split(0.1);
  if (s.global_batch > s.split.train_size())
    throw SetupError("the global batch (" + std::to_string(s.global_batch) + ") is larger than the " +
                     std::to_string(s.split.train_size()) + " training records");
  try {
    Cifar10 data = Cifar10::open(o.data);
    s.data_dir = absolute_path(data.dir());
    s.synthetic_data = data.synthetic();
  } catch (const DataError& e) {
    throw SetupError(e.what());
  }
  check_writable("--save", o.save);
  check_writable("--report", o.report);
  check_writable("--trace", o.trace);
  if (!o.port_file.empty()) check_writable("--port-file", o.port_file);
  if (o.external_workers == 0) p.worker_bin = find_worker_binary(o.worker_bin);

  p.params.resize(s.net.num_params);
  p.optimizer = make_optimizer(s.optimizer, s.net.num_params);
  if (!o.checkpoint_dir.empty()) {
    try {
      p.store.emplace(o.checkpoint_dir, o.checkpoint_keep);
    } catch (const CheckpointError& e) {
      throw SetupError(e.what());
    }
  }
  std::string start_from = o.init.empty() ? "" : "--init " + o.init;
  std::optional<TrainingState> start;
  if (o.resume) {
    std::vector<std::string> skipped;
    auto newest = p.store->load_newest(s.net, &skipped);
    for (const auto& why : skipped)
      std::fprintf(stderr, "threadsplit: skipping a damaged checkpoint: %s\n", why.c_str());
    if (newest) {
      start_from = "--resume " + newest->path;
      start = std::move(newest->state);
      if (start->seed != o.seed)
        throw SetupError(start_from + " was trained with --seed " + std::to_string(start->seed) +
                         ": resume with the flags of the interrupted run");
      std::fprintf(stderr, "threadsplit: resuming from %s (step %lld)\n", newest->path.c_str(),
                   (long long)start->step);
      if (o.steps > 0) {
        // --steps counts from step 0, as in the run that was interrupted.
        s.options.steps = o.steps - start->step;
        p.nothing_left = s.options.steps <= 0;
      }
    } else {
      std::fprintf(stderr, "threadsplit: --resume: no usable checkpoint in %s; starting from step 0\n",
                   o.checkpoint_dir.c_str());
    }
  } else if (!o.init.empty()) {
    try {
      start = load_checkpoint(o.init, s.net);
    } catch (const CheckpointError& e) {
      throw SetupError(std::string("--init: ") + e.what());
    }
  }
  if (start) {
    const TrainingState& st = *start;
    p.params = st.params;
    p.step = st.step;
    p.epoch = st.epoch;
    p.step_in_epoch = st.step_in_epoch;
    if (st.optimizer) {
      try {
        p.optimizer->restore(*st.optimizer);
      } catch (const std::invalid_argument& e) {
        throw SetupError(start_from + ": its optimizer state does not fit this run (" +
                         e.what() + ")");
      }
    }
    if (st.seed != o.seed && !o.resume)
      std::fprintf(stderr, "threadsplit: note: --init was trained with seed %llu, this run uses %llu\n",
                   (unsigned long long)st.seed, (unsigned long long)o.seed);
  } else {
    glorot_uniform_init(s.net, o.seed, p.params.data());
  }

  if (o.external_workers > 0) {
    const char* token = getenv("THREADSPLIT_TOKEN");
    if (!token || !*token)
      throw SetupError("--external-workers needs the run token in THREADSPLIT_TOKEN (give every "
                       "worker the same value in its environment)");
    s.token = token;
  } else {
    s.token = random_hex(16);
  }
  s.run_id = random_hex(6);
  s.config_json = config_json(s);
  return p;
}

int make_synthetic_data(int argc, char** argv) {
  SyntheticDataOptions d;
  try {
    d = parse_synthetic_data_options(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "threadsplit make-synthetic-data: %s\n", e.what());
    return 2;
  }
  if (d.help) {
    std::fputs(synthetic_data_usage_text(argv[0]).c_str(), stdout);
    return 0;
  }
  try {
    write_synthetic_cifar10(d.dir, d.seed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit make-synthetic-data: %s\n", e.what());
    return 1;
  }
  std::printf("wrote synthetic CIFAR-10-shaped data to %s: speed numbers on it are real, "
              "accuracies mean nothing\n", d.dir.c_str());
  return 0;
}

std::string plural(int n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

int run(const RunOptions& o) {
  const double start = now_seconds();
  Prepared p = prepare(o);
  RunSetup& s = p.setup;
  if (p.nothing_left) {
    std::printf("threadsplit: the checkpoint resumed from is at step %lld, --steps %lld are done: "
                "nothing left to train\n", (long long)p.step, (long long)o.steps);
    return 0;
  }

  // The split the run chose, and a loud warning where it oversubscribes.
  if (o.external_workers > 0) {
    std::printf("threadsplit: run %s, %s, model %s, global batch %d (%s)\n", s.run_id.c_str(),
                plural(s.world_size, "external worker").c_str(), o.model.c_str(), s.global_batch,
                s.split_reason.c_str());
  } else {
    std::printf("threadsplit: run %s, %s x %s on cores %s (%d available; %s), model %s, "
                "global batch %d\n",
                s.run_id.c_str(), plural(s.world_size, "worker").c_str(),
                plural(s.threads, "thread").c_str(), s.cores.to_string().c_str(), s.cores.size(),
                s.split_reason.c_str(), o.model.c_str(), s.global_batch);
  }
  if (s.oversubscribed)
    std::fprintf(stderr,
                 "threadsplit: WARNING: %d worker(s) x %d thread(s) = %d threads on %d core(s): "
                 "OVERSUBSCRIBED. Threads will time-share cores, so OpenMP barriers wait for "
                 "descheduled threads and caches are thrashed; this usually runs slower than a "
                 "split with procs x threads = cores.\n",
                 s.world_size, s.threads, s.world_size * s.threads, s.cores.size());
  if (s.synthetic_data)
    std::fprintf(stderr, "threadsplit: NOTE: %s holds SYNTHETIC data: speed numbers are real, "
                 "accuracies mean nothing.\n", s.data_dir.c_str());
  std::fflush(stdout);

  // The service. Welcome hands each joining worker the run's settings and parameters.
  // Under --on-worker-failure continue a lone survivor may compute a whole global batch.
  const int max_local_batch =
      std::max(o.on_worker_failure == "continue" ? s.global_batch
                                                 : (s.global_batch + s.world_size - 1) / s.world_size,
               o.eval_batch);
  const std::vector<float>& initial = p.params;
  Admission admission;
  admission.token = s.token;
  admission.run_id = s.run_id;
  admission.model = o.model;
  admission.world_size = s.world_size;
  admission.limits.run_id = s.run_id;
  admission.limits.num_params = s.net.num_params;
  admission.limits.max_samples = max_local_batch;
  admission.limits.world_size = s.world_size;
  admission.welcome = [&](int rank) {
    threadsplit::Welcome w;
    w.set_run_id(s.run_id);
    w.set_rank(rank);
    w.set_world_size(s.world_size);
    w.set_model(o.model);
    w.set_data_dir(s.data_dir);
    w.set_seed(o.seed);
    w.set_augment(o.augment);
    w.set_max_local_batch(max_local_batch);
    pack_floats(initial.data(), initial.size(), w.mutable_params());
    w.set_loader_threads(o.loader_threads);
    w.set_step(p.step);
    w.set_silence_timeout_s(o.step_timeout_s + 60);
    return w;
  };
  // This thread runs the training loop (TrainingRun); gRPC's threads start normal.
  CoordinatorPriority priority;
  try {
    priority = apply_coordinator_priority(o.coordinator_priority);
  } catch (const std::runtime_error& e) {
    throw SetupError(e.what());
  }
  std::printf("threadsplit: coordinator threads: %s\n", priority.describe.c_str());
  std::fflush(stdout);
  TrainerService service(admission);
  grpc::ServerBuilder builder;
  int port = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  try {
    credentials = server_credentials(o);
  } catch (const std::invalid_argument& e) {
    throw SetupError(e.what());
  }
  if (!is_loopback(o.listen))
    std::fprintf(stderr, "threadsplit: NOTE: listening on %s, not loopback: any host that reaches it "
                 "and holds the run token may join%s\n", o.listen.c_str(),
                 o.tls_cert.empty() ? ", and the wire is not encrypted (--tls-cert/--tls-key)" : "");
  builder.AddListeningPort(o.listen + ":" + std::to_string(o.port), credentials, &port);
  exclusive_port(builder);
  // Asynchronous: this thread polls the service whenever it waits for workers (no handler
  // threads; trainer_service.h).
  service.attach(builder);
  configure_server(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0)
    throw SetupError("cannot listen on " + o.listen + ":" + std::to_string(o.port) +
                     " (port in use? try --port 0)");
  service.start();
  if (!o.port_file.empty()) {
    try {
      write_file_atomically(o.port_file, std::to_string(port) + "\n");
    } catch (const std::runtime_error& e) {
      throw SetupError(std::string("--port-file: ") + e.what());
    }
  }
  const std::string connect_host =
      (o.listen == "0.0.0.0" || o.listen == "::" || o.listen == "[::]") ? "127.0.0.1" : o.listen;
  if (o.external_workers > 0) {
    std::printf("threadsplit: waiting for %s at %s:%d (threadsplit_worker --coordinator %s:%d, "
                "THREADSPLIT_TOKEN in its environment)\n",
                plural(s.world_size, "worker").c_str(), o.listen.c_str(), port,
                connect_host.c_str(), port);
    std::fflush(stdout);
  }

  // The workers, bound before their runtime starts; `members` owns their processes.
  Membership members(s.world_size, o.on_worker_failure, o.failure_grace_s, service);
  try {
    for (int r = 0; r < int(s.worker_cores.size()); ++r) {
      WorkerLaunch l;
      l.program = p.worker_bin;
      l.args = {"--coordinator", connect_host + ":" + std::to_string(port)};
      l.cores = s.worker_cores[size_t(r)];
      l.omp_threads = s.threads;
      l.extra_env = {"THREADSPLIT_TOKEN=" + s.token, "THREADSPLIT_RANK=" + std::to_string(r),
                     "THREADSPLIT_RUN_ID=" + s.run_id};
      for (const auto& e : worker_tls_environment(o)) l.extra_env.push_back(e);
      members.adopt(r, launch_worker(l), l.cores.to_string());
    }
    const int joined = service.wait_for_workers(o.connect_timeout_s, [&] {
      std::vector<bool> in(size_t(s.world_size));
      for (int r = 0; r < s.world_size; ++r) in[size_t(r)] = service.link(r) != nullptr;
      members.check_not_joined_exited(in);
    });
    if (joined < s.world_size)
      throw RunAborted("only " + std::to_string(joined) + " of " + std::to_string(s.world_size) +
                       " workers joined within " + std::to_string(int(o.connect_timeout_s)) +
                       " s (--connect-timeout)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit: %s\n", e.what());
    service.close_and_release_all();
    service.stop(*server);
    members.stop_all(0);
    return 1;
  }
  for (int r = 0; r < s.world_size; ++r) members.joined(r, service.link(r)->hello());

  TrainingRun run(s, members, service, p.params, std::move(p.optimizer), p.step, p.epoch,
                  p.step_in_epoch);
  for (const WorkerRecord& w : run.workers()) {
    const auto& b = w.hello.binding();
    const std::vector<int> got(b.cores().begin(), b.cores().end());
    const std::string effective = CoreSet(got).to_string();
    std::printf("threadsplit: worker %d pid %d on %s: cores %s, %s%s\n", w.rank, b.pid(),
                b.hostname().c_str(), effective.c_str(), plural(b.omp_threads(), "OpenMP thread").c_str(),
                w.assigned_cores.empty() || CoreSet::parse(w.assigned_cores).sorted() == CoreSet(got).sorted()
                    ? "" : (" (ASKED FOR " + w.assigned_cores + ")").c_str());
  }
  const int coordinator_threads = process_thread_count();
  std::fflush(stdout);

  if (p.store) schedule_checkpoints(run, s, *p.store);
  const bool live = o.progress == "on" || (o.progress == "auto" && isatty(STDOUT_FILENO));
  ProgressDisplay progress(live);
  std::optional<EvalOutcome> test;
  std::string error;
  try {
    run.train(progress);
    if (o.eval_every > 0) test = run.evaluate("test", progress);
  } catch (const RunAborted& e) {
    progress.clear();
    error = e.what();
    std::fprintf(stderr, "threadsplit: run aborted: %s\n", error.c_str());
  }
  const bool failed = !error.empty();
  // First the work done so far, then the goodbyes (a stopped worker may take a while).
  const bool saved = write_final_checkpoints(s, run, p.store ? &*p.store : nullptr, failed);
  run.shutdown(failed, failed ? error : "training finished");
  service.close_and_release_all();
  service.stop(*server);
  members.stop_all(5);

  if (test)
    std::printf("test: loss %.4f acc %.4f (%lld records, %.1f s)\n", test->loss, test->accuracy,
                (long long)test->samples, test->seconds);
  int64_t samples = 0;
  for (const auto& e : run.epochs()) samples += e.samples;
  std::printf("trained %lld steps in %.1f s (%.0f img/s); wall %.1f s\n", (long long)run.step(),
              run.train_seconds(), run.train_seconds() > 0 ? double(samples) / run.train_seconds() : 0.0,
              now_seconds() - start);

  int rc = failed || !saved ? 1 : 0;
  if (o.warmup_steps > 0) {
    const TimedFigures t = summarize_steps(run.step_timings(), o.warmup_steps, s.world_size);
    std::printf("timed after %d warm-up steps: %lld steps in %.2f s (%.0f img/s)\n", o.warmup_steps,
                (long long)t.steps, t.seconds, t.images_per_s);
  }
  if (!o.trace.empty()) {
    std::vector<std::string> names;
    for (const WorkerRecord& w : run.workers())
      names.push_back("worker " + std::to_string(w.rank) +
                      (w.assigned_cores.empty() ? std::string() : " (cores " + w.assigned_cores + ")"));
    try {
      write_step_trace(o.trace, run.step_timings(), names,
                       {{"run_id", s.run_id}, {"model", o.model},
                        {"split", std::to_string(s.world_size) + "x" + std::to_string(s.threads)},
                        {"placement", "worker spans end when the coordinator received the step's "
                                      "result; gradient transfer counts as exchange, and the "
                                      "sync wait is measured by the coordinator"}});
      std::printf("wrote trace %s (%zu steps)\n", o.trace.c_str(), run.step_timings().size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: %s\n", e.what());
      rc = 1;
    }
  }
  if (!o.report.empty()) {
    ReportInputs in;
    in.setup = &s;
    in.run = &run;
    in.test = test;
    in.status = failed ? "failed" : "completed";
    in.error = error;
    in.wall_seconds = now_seconds() - start;
    in.coordinator_threads = coordinator_threads;
    in.coordinator_scheduling = priority.describe;
    in.refusals = service.refusals();
    try {
      write_run_report(o.report, in);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: %s\n", e.what());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  ts::keep_freed_memory();
  if (argc >= 2 && std::string(argv[1]) == "make-synthetic-data") return make_synthetic_data(argc, argv);
  if (argc >= 2 && std::string(argv[1]) == "sweep") return ts::sweep_main(argc, argv);
  ts::RunOptions o;
  try {
    o = ts::parse_run_options(argc, argv);
    if (o.help) {
      std::fputs(ts::usage_text(argv[0]).c_str(), stdout);
      return 0;
    }
    ts::validate_options(o);
  } catch (const ts::UsageError& e) {
    std::fprintf(stderr, "threadsplit: %s\n", e.what());
    return 2;
  }
  if (o.autotune) {
    try {
      const ts::AutotuneChoice c = ts::autotune(o, ts::self_executable());
      o.procs = c.procs;
      o.threads = c.threads;
      o.split_chosen_by = c.reason;
      std::printf("threadsplit: %s\n", c.reason.c_str());
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: %s\n", e.what());
      return 1;
    }
  }
  try {
    return run(o);
  } catch (const SetupError& e) {
    std::fprintf(stderr, "threadsplit: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit: %s\n", e.what());
    return 1;
  }
}
