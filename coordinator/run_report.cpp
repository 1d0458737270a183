#include "run_report.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "atomic_file.h"
#include "build_info.h"
#include "json_writer.h"
#include "process_facts.h"
#include "step_timing.h"

namespace ts {

namespace {

void write_config(JsonWriter& j, const RunSetup& s) {
  const RunOptions& o = s.options;
  j.begin_object()
      .field("model", o.model)
      .field("procs", s.world_size)
      .field("threads", s.threads)
      .field("cores", s.cores.to_string())
      .field("external_workers", o.external_workers)
      .field("epochs", o.epochs)
      .field("global_batch", s.global_batch)
      .field("batch_per_worker", o.batch_per_worker)
      .field("batch_mode", o.batch_per_worker > 0 ? "per_worker" : "global")
      .field("optimizer", s.optimizer.kind)
      .field("lr", s.optimizer.learning_rate)
      .field("momentum", s.optimizer.momentum)
      .field("beta1", s.optimizer.beta1)
      .field("beta2", s.optimizer.beta2)
      .field("epsilon", s.optimizer.epsilon)
      .field("seed", o.seed)
      .field("augment", o.augment)
      .field("shuffle", o.shuffle)
      .field("steps", o.steps)
      .field("eval_every", o.eval_every)
      .field("eval_batch", o.eval_batch)
      .field("loader_threads", o.loader_threads)
      .field("validation_records", int64_t(s.split.val_size()))
      .field("train_records", int64_t(s.split.train_size()))
      .field("data", s.data_dir)
      .field("init", o.init)
      .field("save", o.save)
      .end_object();
}

void write_phases(JsonWriter& j, const PhaseSums& p) {
  j.field("data_wait_s", p.data_wait)
      .field("forward_s", p.forward)
      .field("backward_s", p.backward)
      .field("exchange_wait_s", p.exchange_wait)
      .field("sync_wait_s", p.sync_wait)
      .field("apply_params_s", p.apply_params);
}

void write_eval(JsonWriter& j, const EvalOutcome& e) {
  j.begin_object()
      .field("split", e.split)
      .field("samples", e.samples)
      .field("loss", e.loss)
      .field("accuracy", e.accuracy)
      .field("seconds", e.seconds)
      .end_object();
}

}  // namespace

std::string config_json(const RunSetup& setup) {
  JsonWriter j;
  write_config(j, setup);
  return j.str();
}

void write_run_report(const std::string& path, const ReportInputs& in) {
  const RunSetup& s = *in.setup;
  JsonWriter j;
  j.begin_object();
  j.field("run_id", s.run_id).field("status", in.status);
  if (!in.error.empty()) j.field("error", in.error);
  j.key("config");
  write_config(j, s);

  j.key("split").begin_object()
      .field("procs", s.world_size)
      .field("threads", s.threads)
      .field("cores", s.cores.to_string())
      .field("core_count", s.cores.size())
      .field("oversubscribed", s.oversubscribed)
      .field("chosen_by", s.split_reason)
      .end_object();

  j.key("data").begin_object().field("dir", s.data_dir).field("synthetic", s.synthetic_data).end_object();

  const MachineFacts m = machine_facts();
  j.key("machine").begin_object()
      .field("hostname", m.hostname)
      .field("cpu_model", m.cpu_model)
      .field("online_cores", m.online_cores)
      .field("memory_bytes", m.memory_bytes)
      .end_object();

  std::string onednn;
  if (in.run)
    for (const auto& w : in.run->workers())
      if (!w.hello.versions().onednn().empty()) onednn = w.hello.versions().onednn();
  j.key("versions").begin_object()
      .field("onednn", onednn)
      .field("grpc", grpc_version())
      .field("protobuf", protobuf_version())
      .field("compiler", compiler_version())
      .end_object();

  j.key("coordinator").begin_object()
      .field("pid", int64_t(getpid()))
      .field("threads", in.coordinator_threads)
      .field("scheduling", in.coordinator_scheduling)
      .field("max_rss_kb", resource_use().max_rss_kb)
      .end_object();

  j.key("workers").begin_array();
  if (in.run) {
    for (const WorkerRecord& w : in.run->workers()) {
      const auto& b = w.hello.binding();
      std::vector<int> cores(b.cores().begin(), b.cores().end());
      j.begin_object()
          .field("rank", w.rank)
          .field("pid", int64_t(w.pid))
          .field("spawned", w.spawned || !w.assigned_cores.empty())
          .field("hostname", b.hostname())
          .field("assigned_cores", w.assigned_cores)
          .field("cores", CoreSet(cores).to_string())
          .field("omp_threads", b.omp_threads());
      j.key("omp_thread_cores").begin_array();
      for (const auto& c : b.omp_thread_cores()) j.value(c);
      j.end_array();
      j
          .field("omp_places", b.omp_places())
          .field("omp_proc_bind", b.omp_proc_bind())
          .field("process_threads_at_join", b.process_threads())
          .field("onednn", w.hello.versions().onednn());
      if (w.goodbye) {
        j.field("process_threads_at_end", w.goodbye->process_threads())
            .field("omp_threads_at_end", w.goodbye->omp_threads())
            .field("max_rss_kb", w.goodbye->max_rss_kb())
            .field("cpu_user_s", w.goodbye->cpu_user_s())
            .field("cpu_system_s", w.goodbye->cpu_system_s());
      }
      if (!w.exit.empty()) j.field("exit", w.exit);
      j.key("phase_totals").begin_object();
      write_phases(j, w.total);
      j.end_object();
      j.end_object();
    }
  }
  j.end_array();

  j.key("epochs").begin_array();
  double train_s = 0;
  int64_t samples = 0;
  if (in.run) {
    for (const EpochRecord& e : in.run->epochs()) {
      train_s += e.seconds;
      samples += e.samples;
      j.begin_object()
          .field("epoch", e.epoch)
          .field("steps", e.steps)
          .field("planned_steps", e.planned_steps)
          .field("aborted", e.aborted)
          .field("samples", e.samples)
          .field("seconds", e.seconds)
          .field("images_per_s", e.images_per_s)
          .field("train_loss", e.train_loss)
          .field("train_accuracy", e.train_accuracy);
      if (e.validation) {
        j.key("validation");
        write_eval(j, *e.validation);
      }
      write_shares(j, e);
      j.field("gradient_wait_s", e.gradient_wait_s).field("update_s", e.update_s);
      j.key("step_losses").begin_array();
      for (double l : e.step_losses) j.value(l);
      j.end_array();
      j.key("workers").begin_array();
      for (size_t r = 0; r < e.workers.size(); ++r) {
        j.begin_object().field("rank", int64_t(r));
        write_phases(j, e.workers[r]);
        j.end_object();
      }
      j.end_array();
      j.end_object();
    }
  }
  j.end_array();

  if (in.test) {
    j.key("test");
    write_eval(j, *in.test);
  }
  if (in.run) {
    // The steps after --warmup-steps: what the sweep and --autotune compare.
    const TimedFigures t = summarize_steps(in.run->step_timings(), s.options.warmup_steps, s.world_size);
    j.key("timed").begin_object()
        .field("warmup_steps", t.warmup_steps)
        .field("steps", t.steps)
        .field("samples", t.samples)
        .field("seconds", t.seconds)
        .field("images_per_s", t.images_per_s)
        .field("step_s_median", t.step_s_median)
        .field("step_s_min", t.step_s_min)
        .field("step_s_max", t.step_s_max)
        .field("gradient_wait_s", t.gradient_wait_s)
        .field("update_s", t.update_s);
    write_shares(j, t);
    j.end_object();
  }
  j.key("totals").begin_object()
      .field("steps", in.run ? in.run->step() : int64_t(0))
      .field("train_seconds", train_s)
      .field("images_per_s", train_s > 0 ? double(samples) / train_s : 0.0)
      .field("wall_seconds", in.wall_seconds)
      .end_object();
  j.key("refused_workers").begin_array();
  for (const auto& r : in.refusals) j.value(r);
  j.end_array();
  // Workers lost and carried on without (--on-worker-failure continue), one line each.
  j.key("lost_workers").begin_array();
  if (in.run)
    for (const auto& l : in.run->lost_workers()) j.value(l);
  j.end_array();
  j.end_object();

  try {
    write_file_atomically(path, j.str() + "\n");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot write the report " + path + ": " + e.what());
  }
}

}  // namespace ts
