// threadsplit: the coordinator. Checks the flags, prepares the run (coordinator/run_setup.h),
// starts the server, spawns the workers bound to their cores, trains (coordinator/
// training_run.h), and writes the checkpoint, the trace and the report.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "atomic_file.h"
#include "autotune.h"
#include "coordinator_priority.h"
#include "core_set.h"
#include "float_packing.h"
#include "grpc_settings.h"
#include "malloc_tuning.h"
#include "membership.h"
#include "process_facts.h"
#include "progress_display.h"
#include "respawner.h"
#include "run_checkpoints.h"
#include "run_options.h"
#include "run_report.h"
#include "epoch_plan.h"
#include "run_setup.h"
#include "server_security.h"
#include "step_timing.h"
#include "stop_signals.h"
#include "sweep_command.h"
#include "placement_command.h"
#include "onnx_model.h"
#include "synthetic_cifar10.h"
#include "timing.h"
#include "trainer_service.h"
#include "training_run.h"
#include "trial_runner.h"
#include "user_error.h"
#include "worker_launcher.h"

namespace {

using namespace ts;

// The exit status of a run that diverged (a non-finite loss, gradient, sum or state): not 1,
// which says a worker or the run failed, so scripts can tell "lower --lr" from "fix a host".
constexpr int kExitDiverged = 4;

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

// The split the run chose, and a loud warning where it oversubscribes.
void announce(const RunSetup& s) {
  const RunOptions& o = s.options;
  if (o.external_workers > 0) {
    std::printf("threadsplit: run %s, %s, model %s, global batch %d (%s)\n", s.run_id.c_str(),
                plural(s.world_size, "external worker").c_str(), o.model.c_str(), s.global_batch,
                s.split_reason.c_str());
  } else {
    const std::string teams = s.inter_op > 1 ? plural(s.inter_op, "inter-op team") + " x " : "";
    std::printf("threadsplit: run %s, %s x %s%s on cores %s (%d available; %s), model %s, "
                "global batch %d\n",
                s.run_id.c_str(), plural(s.world_size, "worker").c_str(), teams.c_str(),
                plural(s.threads, "thread").c_str(), s.cores.to_string().c_str(), s.cores.size(),
                s.split_reason.c_str(), o.model.c_str(), s.global_batch);
  }
  if (s.oversubscribed)
    std::fprintf(stderr,
                 "threadsplit: WARNING: %d worker(s) x %d inter-op team(s) x %d thread(s) = %d "
                 "threads on %d core(s): OVERSUBSCRIBED. Threads will time-share cores, so OpenMP "
                 "barriers wait for descheduled threads and caches are thrashed; this usually runs "
                 "slower than a split with procs x inter-op x threads = cores.\n",
                 s.world_size, s.inter_op, s.threads, s.world_size * s.inter_op * s.threads,
                 int(s.topology.pus().size()));
  if (o.external_workers == 0) {
    std::printf("threadsplit: machine: %s (%s)\n", s.machine.summary().c_str(), s.machine.source().c_str());
    if (s.topology.pus().size() != s.machine.pus().size())
      std::printf("threadsplit: this run's cores %s: %s\n", s.cores.to_string().c_str(), s.topology.summary().c_str());
    std::printf("threadsplit: placement %s, smt %s:\n", o.placement.c_str(), o.smt.c_str());
    for (size_t r = 0; r < s.placement.workers.size(); ++r)
      std::printf("threadsplit:   worker %zu: %s\n", r, describe(s.placement.workers[r]).c_str());
    for (const std::string& n : s.placement.notes)
      std::fprintf(stderr, "threadsplit: NOTE: %s\n", n.c_str());
  }
  if (o.exchange_only)
    std::fprintf(stderr, "threadsplit: NOTE: --exchange-only: the workers compute nothing and send a "
                 "known gradient of %zu floats; this run measures the exchange, not training (no "
                 "evaluation).\n", s.net.num_params);
  if (s.synthetic_data)
    std::fprintf(stderr, "threadsplit: NOTE: %s holds SYNTHETIC data: speed numbers are real, "
                 "accuracies mean nothing.\n", s.data_dir.c_str());
  std::fflush(stdout);
}

// Who may join, and the Welcome that hands each joining worker the run's settings and the
// starting parameters. Under --on-worker-failure continue a lone survivor may compute a
// whole global batch.
Admission admission_for(const Prepared& p) {
  const RunSetup& s = p.setup;
  const RunOptions& o = s.options;
  const int max_local_batch =
      std::max(o.on_worker_failure == "continue"
                   ? s.global_batch
                   : worker_share(s.global_batch, s.world_size, 0, s.granule).count,  // rank 0's is the largest
               o.eval_batch);
  Admission a;
  a.token = s.token;
  a.run_id = s.run_id;
  a.model = o.model;
  a.world_size = s.world_size;
  a.data_fingerprint = s.data_fingerprint;
  a.data_dir = s.data_dir;
  a.hello_timeout_s = o.connect_timeout_s;
  a.limits.run_id = s.run_id;
  a.limits.num_params = s.net.num_params;
  a.limits.max_samples = max_local_batch;
  a.limits.world_size = s.world_size;
  a.welcome = [&p, max_local_batch](int rank) {
    const RunSetup& setup = p.setup;
    threadsplit::Welcome w;
    w.set_run_id(setup.run_id);
    w.set_rank(rank);
    w.set_world_size(setup.world_size);
    w.set_model(setup.options.model);
    if (!setup.model_onnx.empty()) w.set_model_onnx(setup.model_onnx);
    w.set_data_dir(setup.data_dir);
    w.set_data_fingerprint(setup.data_fingerprint);
    w.set_seed(setup.options.seed);
    w.set_augment(setup.options.augment);
    w.set_max_local_batch(max_local_batch);
    pack_floats(p.params.data(), p.params.size(), w.mutable_params());
    w.set_loader_threads(setup.options.loader_threads);
    w.set_step(p.step);
    w.set_silence_timeout_s(setup.options.step_timeout_s + 60);
    w.set_precision(setup.options.precision);
    w.set_label_smoothing(setup.options.label_smoothing);
    w.set_loss_sum(setup.options.loss == "sum");
    w.set_bn_group(setup.granule > 1 ? setup.granule : 0);
    w.set_normalize(setup.options.normalize);
    w.set_exchange_only(setup.options.exchange_only);
    w.set_bucket_bytes(int64_t(setup.options.bucket_kb) * 1024);
    w.set_shared_memory(p.plane != nullptr);
    return w;
  };
  return a;
}

// The service and the gRPC server it runs in, listening.
struct Server {
  std::unique_ptr<TrainerService> service;
  std::unique_ptr<grpc::Server> grpc;
  int port = 0;
  std::string connect_host;      // where local workers reach it
  CoordinatorPriority priority;  // of this, the training thread
  void stop() {
    service->close_and_release_all();
    service->stop(*grpc);
  }
};

// Throws UserError when it cannot listen (or the priority or TLS flags cannot be honoured).
Server start_server(const Prepared& p) {
  const RunOptions& o = p.setup.options;
  Server sv;
  // This thread runs the training loop (TrainingRun); gRPC's threads start normal.
  sv.priority = as_user_error("", [&] { return apply_coordinator_priority(o.coordinator_priority); });
  std::printf("threadsplit: coordinator threads: %s\n", sv.priority.describe.c_str());
  std::fflush(stdout);
  sv.service = std::make_unique<TrainerService>(admission_for(p));
  const auto credentials = as_user_error("", [&] { return server_credentials(o); });
  if (!is_loopback(o.listen))
    std::fprintf(stderr, "threadsplit: NOTE: listening on %s, not loopback: any host that reaches it "
                 "and holds the run token may join%s\n", o.listen.c_str(),
                 o.tls_cert.empty() ? ", and the wire is not encrypted (--tls-cert/--tls-key)" : "");
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen + ":" + std::to_string(o.port), credentials, &sv.port);
  exclusive_port(builder);
  // Asynchronous: this thread polls the service whenever it waits for workers (no handler
  // threads; trainer_service.h).
  sv.service->attach(builder);
  configure_server(builder, coordinator_receive_limit(p.setup.net.num_params));
  sv.grpc = builder.BuildAndStart();
  if (!sv.grpc || sv.port == 0)
    throw UserError("cannot listen on " + o.listen + ":" + std::to_string(o.port) +
                    " (port in use? try --port 0)");
  sv.service->start();
  if (!o.port_file.empty())
    as_user_error("--port-file: ", [&] { write_file_atomically(o.port_file, std::to_string(sv.port) + "\n"); });
  sv.connect_host = (o.listen == "0.0.0.0" || o.listen == "::" || o.listen == "[::]") ? "127.0.0.1" : o.listen;
  if (o.external_workers > 0) {
    std::printf("threadsplit: waiting for %s at %s:%d (threadsplit_worker --coordinator %s:%d, "
                "THREADSPLIT_TOKEN in its environment)\n",
                plural(p.setup.world_size, "worker").c_str(), o.listen.c_str(), sv.port,
                sv.connect_host.c_str(), sv.port);
    std::fflush(stdout);
  }
  return sv;
}

// How local worker r is started: its binary, cores, threads and environment (token, rank,
// run id, TLS). The same for its first start and a --respawn.
WorkerLaunch launch_for(const Prepared& p, const Server& sv, int r) {
  const RunSetup& s = p.setup;
  WorkerLaunch l;
  l.program = p.worker_bin;
  l.args = {"--coordinator", sv.connect_host + ":" + std::to_string(sv.port)};
  l.cores = s.worker_cores[size_t(r)];
  l.omp_threads = s.threads;
  l.inter_op = s.inter_op;
  l.memory = s.placement.workers[size_t(r)].memory;
  l.extra_env = {"THREADSPLIT_TOKEN=" + s.token, "THREADSPLIT_RANK=" + std::to_string(r),
                 "THREADSPLIT_RUN_ID=" + s.run_id};
  for (const auto& e : worker_tls_environment(s.options)) l.extra_env.push_back(e);
  if (p.plane) l.extra_env.push_back("THREADSPLIT_SHM_FD=" + std::to_string(p.plane->fd()));
  return l;
}

// --respawn: the real hooks, with the Welcome of a rank joining now (the current parameters
// and step instead of the starting ones).
Respawner::Hooks respawn_hooks(const Prepared& p, Server& sv, const TrainingRun& run) {
  std::vector<WorkerLaunch> launches;
  for (int r = 0; r < int(p.setup.worker_cores.size()); ++r) launches.push_back(launch_for(p, sv, r));
  auto first = admission_for(p).welcome;
  auto welcome = [first, &run](int rank) {
    threadsplit::Welcome w = first(rank);
    w.set_step(run.step());
    w.clear_params();
    pack_floats(run.params().data(), run.params().size(), w.mutable_params());
    return w;
  };
  return local_worker_hooks(*sv.service, std::move(launches), welcome, p.setup.options.connect_timeout_s);
}

// Spawns the local workers, bound before their runtime starts, and waits for every rank to
// join. Throws (RunAborted, std::runtime_error) when one cannot start or not all joined.
void spawn_and_join(const Prepared& p, Server& sv, Membership& members) {
  const RunSetup& s = p.setup;
  const RunOptions& o = s.options;
  for (int r = 0; r < int(s.worker_cores.size()); ++r) {
    const WorkerLaunch l = launch_for(p, sv, r);
    members.adopt(r, launch_worker(l), l.cores.to_string());
  }
  const int joined = sv.service->wait_for_workers(o.connect_timeout_s, [&] {
    std::vector<bool> in(size_t(s.world_size));
    for (int r = 0; r < s.world_size; ++r) in[size_t(r)] = sv.service->link(r) != nullptr;
    members.check_not_joined_exited(in);
  });
  if (joined < s.world_size)
    throw RunAborted("only " + std::to_string(joined) + " of " + std::to_string(s.world_size) +
                     " workers joined within " + std::to_string(int(o.connect_timeout_s)) +
                     " s (--connect-timeout)");
  for (int r = 0; r < s.world_size; ++r) members.joined(r, sv.service->link(r)->hello());
}

// Each worker's effective binding, as it read it back, and where it differs from the ask.
void report_bindings(const Membership& members) {
  for (const WorkerRecord& w : members.workers()) {
    const auto& b = w.hello.binding();
    const std::vector<int> got(b.cores().begin(), b.cores().end());
    const std::string effective = CoreSet(got).to_string();
    std::string teams;
    if (b.inter_op() > 1) {
      teams = plural(b.inter_op(), "team") + " (";
      for (int i = 0; i < b.team_cores_size(); ++i)
        teams += (i ? ", " : "") + std::string("team ") + std::to_string(i) + ": " + b.team_cores(i);
      teams += ") of ";
    }
    std::string nodes;
    for (int n : b.numa_nodes()) nodes += (nodes.empty() ? "" : ",") + std::to_string(n);
    const std::string where = (b.numa_nodes_size() > 1 ? ", nodes " : ", node ") + nodes + ", memory " +
                              describe_memory(b.memory_policy() == "first touch" ? "" : b.memory_policy());
    std::printf("threadsplit: worker %d pid %d on %s: cores %s%s, %s%s%s\n", w.rank, b.pid(),
                b.hostname().c_str(), effective.c_str(), nodes.empty() ? "" : where.c_str(), teams.c_str(),
                plural(b.omp_threads(), "OpenMP thread").c_str(),
                w.assigned_cores.empty() || CoreSet::parse(w.assigned_cores).sorted() == CoreSet(got).sorted()
                    ? "" : (" (ASKED FOR " + w.assigned_cores + ")").c_str());
  }
  std::fflush(stdout);
}

struct Outcome {
  std::optional<EvalOutcome> test;
  std::string error;             // empty: completed
  bool diverged = false;         // the error is the run's divergence (RunDiverged)
  bool saved = true;             // the final checkpoints were written
  int signo = 0;                 // the stop signal that ended the run (stop_signals.h), or 0
};

// Trains, tests, writes the final checkpoints (failed runs too), then lets the workers go.
Outcome train(Prepared& p, TrainingRun& run, Server& sv, Membership& members) {
  const RunOptions& o = p.setup.options;
  if (p.store) {
    if (p.replace_other_checkpoints) p.store->replace_others_after_next_save();
    schedule_checkpoints(run, p.setup, *p.store);
  }
  ProgressDisplay progress(o.progress == "on" || (o.progress == "auto" && isatty(STDOUT_FILENO)));
  Outcome out;
  // A stop signal ends the run after the step in flight (stop_signals.h).
  run.set_stop_check(stop_signal);
  try {
    run.train(progress);
    if (o.eval_every > 0 && !stop_signal()) out.test = run.evaluate("test", progress, o.tta);
  } catch (const RunDiverged& e) {
    // Not a worker's fault: no policy applied; the state is the last good step's.
    progress.clear();
    out.error = e.what();
    out.diverged = true;
    std::fprintf(stderr, "threadsplit: %s\n", out.error.c_str());
  } catch (const RunAborted& e) {
    progress.clear();
    out.error = e.what();
    std::fprintf(stderr, "threadsplit: run aborted: %s\n", out.error.c_str());
  } catch (const StopRequested&) {
    progress.clear();
  }
  // A signal that came during the test round or an abort still decides the exit status.
  out.signo = stop_signal();
  const bool failed = !out.error.empty();
  const std::string stopped_by = out.signo ? signal_name(out.signo) : "";
  // First the work done so far, then the goodbyes (a stopped worker may take a while).
  std::vector<std::string> saved;
  out.saved = write_final_checkpoints(p.setup, run, p.store ? &*p.store : nullptr, failed, out.diverged,
                                     stopped_by, &saved);
  if (out.signo) {
    std::string where;
    for (const std::string& path : saved) where += (where.empty() ? "" : " and ") + path;
    std::fprintf(stderr, "threadsplit: %s: stopping after step %lld (%lld this run), %s\n",
                 stopped_by.c_str(), (long long)run.step(), (long long)run.steps_this_run(),
                 !saved.empty() ? ("checkpoint " + where + " (continue with --resume)").c_str()
                 : !out.saved   ? "the checkpoint could NOT be written (see above)"
                                : "no checkpoint (neither --checkpoint-dir nor --save was given)");
    std::fflush(stderr);
  }
  run.shutdown(failed, failed ? out.error : out.signo ? "stopped by " + stopped_by : "training finished");
  sv.stop();
  members.stop_all(5);
  return out;
}

// The summary lines, the trace and the report. Returns the exit status.
int write_outputs(const RunSetup& s, const TrainingRun& run, const Server& sv, const Outcome& out,
                  int coordinator_threads, double start) {
  const RunOptions& o = s.options;
  if (out.test)
    std::printf("test: loss %.4f acc %.4f (%lld records, %.1f s)\n", out.test->loss, out.test->accuracy,
                (long long)out.test->samples, out.test->seconds);
  int64_t samples = 0;
  for (const auto& e : run.epochs()) samples += e.samples;
  const std::string resumed = run.step() != run.steps_this_run()
                                  ? " (the run is at step " + std::to_string(run.step()) + ")" : "";
  std::printf("trained %lld steps in %.1f s (%.0f img/s)%s; wall %.1f s\n",
              (long long)run.steps_this_run(), run.train_seconds(),
              run.train_seconds() > 0 ? double(samples) / run.train_seconds() : 0.0, resumed.c_str(),
              now_seconds() - start);
  // 4: the run diverged (its last good state was saved); 1: any other failure.
  int rc = !out.saved ? 1 : out.diverged ? kExitDiverged : !out.error.empty() ? 1 : 0;
  if (o.warmup_steps > 0) {
    const TimedFigures t = summarize_steps(run.step_timings(), o.warmup_steps, s.world_size);
    std::printf("timed after %d warm-up steps: %lld steps in %.2f s (%.0f img/s)\n", o.warmup_steps,
                (long long)t.steps, t.seconds, t.images_per_s);
  }
  if (!o.export_onnx.empty()) {
    // The trained model as an inference graph (common/onnx_model.h), whatever ended the run:
    // its parameters are the last good step's.
    try {
      export_onnx(s.net, run.params().data(), o.export_onnx);
      std::printf("wrote ONNX model %s (step %lld, batch norm in eval form)\n", o.export_onnx.c_str(),
                  (long long)run.step());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: --export-onnx %s: %s\n", o.export_onnx.c_str(), e.what());
      rc = 1;
    }
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
    in.test = out.test;
    in.status = !out.error.empty() ? (out.diverged ? "diverged" : "failed")
                : out.signo            ? "interrupted"
                                       : "completed";
    in.error = out.error;
    if (out.signo) in.signal = signal_name(out.signo);
    in.wall_seconds = now_seconds() - start;
    in.coordinator_threads = coordinator_threads;
    in.coordinator_scheduling = sv.priority.describe;
    in.refusals = sv.service->refusals();
    in.refusals_total = sv.service->refusals_total();
    try {
      write_run_report(o.report, in);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: %s\n", e.what());
      rc = 1;
    }
  }
  // A stop signal says so in the exit status (128 + signo, as a shell reports a process that
  // signal killed), so schedulers see it was stopped -- unless something it should have
  // saved (the final checkpoint, the report, the trace) could not be written: a wrapper that
  // requeues on 143 must not take a lost checkpoint for a clean stop.
  const bool outputs_lost = !out.saved || (rc == 1 && out.error.empty());
  return out.signo && !outputs_lost ? 128 + out.signo : rc;
}

// One run: prepare -> start the server -> spawn the workers -> report their bindings ->
// train -> write the outputs.
int run(const RunOptions& o) {
  const double start = now_seconds();
  watch_stop_request(false, "before training started: nothing was saved");
  // A signal taken while it was watched (the autotune's last moments) but not yet honoured.
  if (const int sig = stop_signal()) {
    std::fprintf(stderr, "threadsplit: %s: stopping before training started: nothing was saved\n",
                 signal_name(sig).c_str());
    return 128 + sig;
  }
  Prepared p = prepare(o);
  if (p.nothing_left) {
    if (o.steps > 0 && p.step >= o.steps)
      std::printf("threadsplit: the checkpoint resumed from is at step %lld, --steps %lld are done: "
                  "nothing left to train\n", (long long)p.step, (long long)o.steps);
    else
      std::printf("threadsplit: the checkpoint resumed from is at step %lld, the end of epoch %lld of "
                  "--epochs %d: nothing left to train (raise --epochs to train on)\n",
                  (long long)p.step, (long long)p.epoch, o.epochs);
    return 0;
  }
  const RunSetup& s = p.setup;
  announce(s);
  if (s.data_plane == "shm") {
    try {
      p.plane = std::make_shared<SharedPlane>(SharedPlane::create(s.net.num_params, s.world_size));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: %s (use --data-plane grpc)\n", e.what());
      return 1;
    }
  }
  Server sv = start_server(p);
  // `members` owns the worker processes from their start to their end.
  Membership members(s.world_size, o.on_worker_failure, o.failure_grace_s, *sv.service);
  try {
    spawn_and_join(p, sv, members);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit: %s\n", e.what());
    sv.stop();
    members.stop_all(0);
    return 1;
  }
  // From here a stop signal ends the run after a step, with a checkpoint and a report;
  // before, nothing is worth saving and it stops the run at once. Set before the bindings
  // are printed, so that whoever waits for those lines signals a run that will save.
  watch_stop_request(true, "stopping after the current step, then the final checkpoint and "
                           "the report");
  report_bindings(members);
  const int coordinator_threads = process_thread_count();
  TrainingRun run(s, members, *sv.service, p.params, std::move(p.optimizer), p.step, p.epoch,
                  p.step_in_epoch);
  run.set_shared_plane(p.plane.get());
  std::optional<Respawner> respawner;
  if (o.respawn > 0) {
    respawner.emplace(o.respawn, members, sv.service->events(), respawn_hooks(p, sv, run));
    run.set_respawner(&*respawner);
  }
  const Outcome out = train(p, run, sv, members);
  return write_outputs(s, run, sv, out, coordinator_threads, start);
}

}  // namespace

int main(int argc, char** argv) {
  // First, before any thread exists: every later thread inherits the blocked stop signals.
  ts::install_stop_signals("threadsplit");
  ts::keep_freed_memory();
  if (argc >= 2 && std::string(argv[1]) == "make-synthetic-data") return make_synthetic_data(argc, argv);
  if (argc >= 2 && std::string(argv[1]) == "sweep") return ts::sweep_main(argc, argv);
  if (argc >= 2 && std::string(argv[1]) == "placement") return ts::placement_main(argc, argv);
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
      ts::watch_stop_request(true, "stopping the autotune trial in flight, then exiting");
      const ts::AutotuneChoice c =
          ts::autotune(o, ts::self_executable(), std::vector<std::string>(argv + 1, argv + argc));
      ts::throw_if_stop_requested();
      o.procs = c.procs;
      o.threads = c.threads;
      o.inter_op = c.inter_op;
      o.split_chosen_by = c.reason;
      o.autotune_seconds = c.seconds;
      o.autotune_cost_s = c.cost_s;
      o.autotune_trained_steps = c.trained_steps;
      o.autotune_scratch = c.scratch_dir;
      // The trials were the run's first steps: go on from the last one's checkpoint.
      if (!c.continue_from.empty()) {
        o.init = c.continue_from;
        if (o.steps > 0) o.steps -= c.trained_steps;
      }
      std::printf("threadsplit: %s\n", c.reason.c_str());
      std::fflush(stdout);
    } catch (const ts::StopRequested& e) {
      std::fprintf(stderr, "threadsplit: %s: --autotune stopped before training; nothing was saved\n",
                   ts::signal_name(e.signo()).c_str());
      return e.exit_status();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: %s\n", e.what());
      return 1;
    }
  }
  // The autotune's trial checkpoints are loaded by now or never: remove them at exit.
  struct Scratch {
    std::string dir;
    ~Scratch() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } scratch{o.autotune_scratch};
  try {
    return run(o);
  } catch (const ts::UserError& e) {  // found before anything started
    std::fprintf(stderr, "threadsplit: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit: %s\n", e.what());
    return 1;
  }
}
