#include "run_report.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "atomic_file.h"
#include "build_info.h"
#include "json_io.h"
#include "process_facts.h"
#include "step_timing.h"

namespace ts {

namespace {

using nlohmann::ordered_json;

// Lost workers replaced (--respawn), one object each.
ordered_json respawn_records(const TrainingRun* run) {
  ordered_json a = ordered_json::array();
  if (!run) return a;
  for (const RespawnRecord& r : run->respawns()) {
    ordered_json o;
    o["rank"] = r.rank;
    o["old_pid"] = r.old_pid;
    o["new_pid"] = r.new_pid;
    o["step"] = r.step;
    o["old_exit"] = r.old_exit;
    o["why"] = r.why;
    o["outcome"] = r.outcome;
    a.push_back(o);
  }
  return a;
}

ordered_json config(const RunSetup& s) {
  const RunOptions& o = s.options;
  ordered_json c;
  c["model"] = o.model;
  c["num_params"] = int64_t(s.net.num_params);  // floats in every gradient and Params message
  c["procs"] = s.world_size;
  c["threads"] = s.threads;
  c["inter_op"] = s.inter_op;
  c["cores"] = s.cores.to_string();
  c["external_workers"] = o.external_workers;
  c["respawn"] = o.respawn;
  c["epochs"] = o.epochs;
  c["global_batch"] = s.global_batch;
  c["batch_per_worker"] = o.batch_per_worker;
  c["batch_mode"] = o.batch_per_worker > 0 ? "per_worker" : "global";
  c["optimizer"] = s.optimizer.kind;
  c["lr"] = s.optimizer.learning_rate;
  c["momentum"] = s.optimizer.momentum;
  c["beta1"] = s.optimizer.beta1;
  c["beta2"] = s.optimizer.beta2;
  c["epsilon"] = s.optimizer.epsilon;
  c["precision"] = o.precision;
  c["label_smoothing"] = o.label_smoothing;
  c["loss"] = o.loss;
  c["bn_group"] = s.granule > 1 ? s.granule : 0;
  c["normalize"] = o.normalize;
  c["drop_last"] = o.drop_last;
  c["weight_decay"] = o.weight_decay;
  c["nesterov"] = o.nesterov;
  c["bias_lr_scale"] = o.bias_lr_scale;
  c["lr_schedule"] = o.lr_schedule;
  // The schedule's length in steps changes every step's lr; constant: it does not matter.
  c["schedule_steps"] = o.lr_schedule == "constant" && o.lookahead_every == 0 ? int64_t(0) : s.schedule_steps;
  c["whiten_bias_epochs"] = o.whiten_bias_epochs;
  c["lookahead_every"] = o.lookahead_every;
  c["tta"] = o.tta;
  c["epochs_exact"] = o.epochs_exact;
  c["seed"] = o.seed;
  c["augment"] = o.augment;
  c["shuffle"] = o.shuffle;
  c["steps"] = o.steps;
  c["eval_every"] = o.eval_every;
  c["eval_batch"] = o.eval_batch;
  c["loader_threads"] = o.loader_threads;
  c["validation_records"] = int64_t(s.split.val_size());
  c["train_records"] = int64_t(s.split.train_size());
  c["data"] = s.data_dir;
  c["init"] = o.init;
  c["save"] = o.save;
  c["exchange_only"] = o.exchange_only;
  c["bucket_kb"] = o.bucket_kb;
  c["data_plane"] = s.data_plane;
  return c;
}

void add_phases(ordered_json& j, const PhaseSums& p) {
  j["data_wait_s"] = p.data_wait;
  j["forward_s"] = p.forward;
  j["backward_s"] = p.backward;
  j["exchange_wait_s"] = p.exchange_wait;
  j["sync_wait_s"] = p.sync_wait;
  j["apply_params_s"] = p.apply_params;
}

ordered_json eval(const EvalOutcome& e) {
  ordered_json j;
  j["split"] = e.split;
  j["tta"] = e.tta;
  j["samples"] = e.samples;
  j["loss"] = e.loss;
  j["accuracy"] = e.accuracy;
  j["seconds"] = e.seconds;
  return j;
}

ordered_json worker(const WorkerRecord& w, const PhaseSums& totals) {
  const auto& b = w.hello.binding();
  std::vector<int> cores(b.cores().begin(), b.cores().end());
  ordered_json j;
  j["rank"] = w.rank;
  j["pid"] = int64_t(w.pid);
  j["spawned"] = w.spawned || !w.assigned_cores.empty();
  j["hostname"] = b.hostname();
  j["assigned_cores"] = w.assigned_cores;
  j["cores"] = CoreSet(cores).to_string();
  j["omp_threads"] = b.omp_threads();
  j["inter_op"] = std::max(1, b.inter_op());
  ordered_json& teams = j["team_cores"] = ordered_json::array();
  for (const auto& c : b.team_cores()) teams.push_back(c);
  ordered_json& per_thread = j["omp_thread_cores"] = ordered_json::array();
  for (const auto& c : b.omp_thread_cores()) per_thread.push_back(c);
  j["numa_nodes"] = std::vector<int>(b.numa_nodes().begin(), b.numa_nodes().end());
  j["memory_policy"] = b.memory_policy();
  j["omp_places"] = b.omp_places();
  j["omp_proc_bind"] = b.omp_proc_bind();
  j["process_threads_at_join"] = b.process_threads();
  j["onednn"] = w.hello.versions().onednn();
  if (w.goodbye) {
    j["process_threads_at_end"] = w.goodbye->process_threads();
    j["omp_threads_at_end"] = w.goodbye->omp_threads();
    j["max_rss_kb"] = w.goodbye->max_rss_kb();
    j["cpu_user_s"] = w.goodbye->cpu_user_s();
    j["cpu_system_s"] = w.goodbye->cpu_system_s();
  }
  if (!w.exit.empty()) j["exit"] = w.exit;
  add_phases(j["phase_totals"] = ordered_json::object(), totals);
  return j;
}

ordered_json epoch(const EpochRecord& e) {
  ordered_json j;
  j["epoch"] = e.epoch;
  j["steps"] = e.steps;
  j["planned_steps"] = e.planned_steps;
  j["aborted"] = e.aborted;
  j["interrupted"] = e.interrupted;
  j["samples"] = e.samples;
  j["seconds"] = e.seconds;
  j["images_per_s"] = e.images_per_s;
  j["train_loss"] = e.train_loss;
  j["train_accuracy"] = e.train_accuracy;
  if (e.validation) j["validation"] = eval(*e.validation);
  write_shares(j, e.shares);
  j["gradient_wait_s"] = e.gradient_wait_s;
  j["update_s"] = e.update_s;
  j["step_losses"] = e.step_losses;
  ordered_json& workers = j["workers"] = ordered_json::array();
  for (size_t r = 0; r < e.workers.size(); ++r) {
    ordered_json w;
    w["rank"] = int64_t(r);
    add_phases(w, e.workers[r]);
    workers.push_back(std::move(w));
  }
  return j;
}

}  // namespace

std::string config_json(const RunSetup& setup) { return json_text(config(setup)); }

void write_run_report(const std::string& path, const ReportInputs& in) {
  const RunSetup& s = *in.setup;
  ordered_json j;
  j["run_id"] = s.run_id;
  j["status"] = in.status;
  j["lineage"] = s.lineage;
  if (!in.error.empty()) j["error"] = in.error;
  if (!in.signal.empty()) {
    // A stop signal ended the run after a complete step (stop_signals.h).
    ordered_json& stop = j["interrupted"];
    stop["signal"] = in.signal;
    stop["after_step"] = in.run ? in.run->step() : int64_t(0);
    stop["steps_this_run"] = in.run ? in.run->steps_this_run() : int64_t(0);
  }
  j["config"] = config(s);

  ordered_json& split = j["split"];
  split["procs"] = s.world_size;
  split["threads"] = s.threads;
  split["inter_op"] = s.inter_op;
  split["cores"] = s.cores.to_string();
  split["core_count"] = s.cores.size();
  split["oversubscribed"] = s.oversubscribed;
  split["chosen_by"] = s.split_reason;
  if (s.options.external_workers == 0) {
    // The machine, the part of it this run had, and where each worker was placed on it.
    ordered_json& topo = j["topology"];
    topo["source"] = s.machine.source();
    topo["machine"] = s.machine.summary();
    topo["run_cores"] = s.topology.summary();
    topo["packages"] = s.topology.packages();
    topo["numa_nodes"] = s.topology.numa_nodes();
    topo["l3_domains"] = s.topology.l3_domains();
    topo["physical_cores"] = s.topology.cores();
    topo["hardware_threads"] = int(s.topology.pus().size());
    ordered_json& pl = split["placement"];
    pl["policy"] = s.options.placement;
    pl["smt"] = s.options.smt;
    pl["uses_siblings"] = s.placement.uses_siblings;
    pl["notes"] = s.placement.notes;
    ordered_json& ws = pl["workers"] = ordered_json::array();
    for (const WorkerPlace& w : s.placement.workers) {
      ordered_json o;
      o["cores"] = w.cores.to_string();
      ordered_json& teams = o["teams"] = ordered_json::array();
      for (const CoreSet& t : w.teams) teams.push_back(t.to_string());
      o["numa_nodes"] = w.numa_nodes;
      o["packages"] = w.packages;
      o["l3_domains"] = w.l3_domains;
      o["shares_physical_cores"] = w.shares_physical_cores;
      o["memory"] = describe_memory(w.memory);
      ws.push_back(o);
    }
  }
  if (s.options.autotune) {
    ordered_json& at = split["autotune"];
    at["seconds"] = s.options.autotune_seconds;
    at["trained_steps"] = s.options.autotune_trained_steps;  // already in the run's step count
    at["net_cost_s"] = s.options.autotune_cost_s;
    at["budget"] = s.options.autotune_budget;
  }

  j["data"]["dir"] = s.data_dir;
  j["data"]["synthetic"] = s.synthetic_data;

  const MachineFacts m = machine_facts();
  ordered_json& machine = j["machine"];
  machine["hostname"] = m.hostname;
  machine["cpu_model"] = m.cpu_model;
  machine["online_cores"] = m.online_cores;
  machine["memory_bytes"] = m.memory_bytes;

  std::string onednn;
  if (in.run)
    for (const auto& w : in.run->workers())
      if (!w.hello.versions().onednn().empty()) onednn = w.hello.versions().onednn();
  ordered_json& versions = j["versions"];
  versions["onednn"] = onednn;
  versions["grpc"] = grpc_version();
  versions["protobuf"] = protobuf_version();
  versions["compiler"] = compiler_version();

  ordered_json& coordinator = j["coordinator"];
  coordinator["pid"] = int64_t(getpid());
  coordinator["threads"] = in.coordinator_threads;
  coordinator["scheduling"] = in.coordinator_scheduling;
  const ResourceUse own = resource_use();
  coordinator["max_rss_kb"] = own.max_rss_kb;
  // The whole process so far (setup, every step, the goodbyes): with the workers' Goodbye
  // figures and /proc/stat it tells this run's CPU from other processes' (bench/).
  coordinator["cpu_user_s"] = own.user_s;
  coordinator["cpu_system_s"] = own.system_s;

  ordered_json& workers = j["workers"] = ordered_json::array();
  if (in.run)
    for (const WorkerRecord& w : in.run->workers()) workers.push_back(worker(w, in.run->worker_totals(w.rank)));

  ordered_json& epochs = j["epochs"] = ordered_json::array();
  double train_s = 0;
  int64_t samples = 0;
  if (in.run) {
    for (const EpochRecord& e : in.run->epochs()) {
      train_s += e.seconds;
      samples += e.samples;
      epochs.push_back(epoch(e));
    }
  }

  if (in.test) j["test"] = eval(*in.test);
  if (in.run) {
    // The steps after --warmup-steps: what the sweep and --autotune compare.
    const TimedFigures t = summarize_steps(in.run->step_timings(), s.options.warmup_steps, s.world_size);
    ordered_json& timed = j["timed"];
    timed["warmup_steps"] = t.warmup_steps;
    timed["steps"] = t.steps;
    timed["samples"] = t.samples;
    timed["seconds"] = t.seconds;
    timed["images_per_s"] = t.images_per_s;
    timed["step_s_median"] = t.step_s_median;
    timed["step_s_min"] = t.step_s_min;
    timed["step_s_max"] = t.step_s_max;
    timed["gradient_wait_s"] = t.gradient_wait_s;
    timed["update_s"] = t.update_s;
    // The coordinator process's CPU over the same window (all its threads, gRPC's included).
    timed["coordinator_cpu_s"] = t.coordinator_cpu_user_s + t.coordinator_cpu_system_s;
    timed["coordinator_cpu_user_s"] = t.coordinator_cpu_user_s;
    timed["coordinator_cpu_system_s"] = t.coordinator_cpu_system_s;
    write_shares(timed, t.shares);
  }
  ordered_json& totals = j["totals"];
  totals["steps"] = in.run ? in.run->step() : int64_t(0);
  totals["train_seconds"] = train_s;
  totals["images_per_s"] = train_s > 0 ? double(samples) / train_s : 0.0;
  totals["wall_seconds"] = in.wall_seconds;
  // The first refusals, then (when there were more) one line counting them all.
  ordered_json& refused = j["refused_workers"] = in.refusals;
  if (in.refusals_total > int64_t(in.refusals.size()))
    refused.push_back("and " + std::to_string(in.refusals_total - int64_t(in.refusals.size())) +
                      " more refusals (" + std::to_string(in.refusals_total) + " in all)");
  // Workers lost and carried on without (--on-worker-failure continue), one line each.
  j["lost_workers"] = in.run ? ordered_json(in.run->lost_workers()) : ordered_json::array();
  // Each replacement try (--respawn; the key is there when the flag is).
  if (s.options.respawn > 0) j["respawns"] = respawn_records(in.run);

  try {
    write_file_atomically(path, json_text(j) + "\n");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot write the report " + path + ": " + e.what());
  }
}

}  // namespace ts
