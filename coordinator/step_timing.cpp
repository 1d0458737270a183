#include "step_timing.h"

#include <algorithm>

#include "trace_writer.h"

namespace ts {

PhaseShares& PhaseShares::operator+=(const PhaseShares& o) {
  data_wait += o.data_wait;
  forward += o.forward;
  backward += o.backward;
  exchange += o.exchange;
  update += o.update;
  sync_wait += o.sync_wait;
  return *this;
}

PhaseShares& PhaseShares::operator/=(double n) {
  data_wait /= n;
  forward /= n;
  backward /= n;
  exchange /= n;
  update /= n;
  sync_wait /= n;
  return *this;
}

double sync_wait(const StepTiming& step, size_t r) {
  if (r >= step.workers.size()) return 0;
  double last = 0;
  for (const WorkerStepTiming& w : step.workers) last = std::max(last, w.received_s);
  return std::max(0.0, last - step.workers[r].received_s);
}

namespace {

bool took_part(const StepTiming& step, size_t r) {
  return r < step.workers.size() && step.workers[r].received_s > 0;
}

// Worker r's phases of steps[i] alone; `known` says whether its exchange is (the next
// record carries it). A rank that did not take part (lost before) has none.
PhaseSums step_phases(const std::vector<StepTiming>& steps, size_t i, size_t r, bool* known) {
  PhaseSums p;
  *known = false;
  if (!took_part(steps[i], r)) return p;
  const WorkerStepTiming& w = steps[i].workers[r];
  p.data_wait = w.data_wait;
  p.forward = w.forward;
  p.backward = w.backward;
  p.bucket_send = w.bucket_send;
  if (i + 1 < steps.size() && took_part(steps[i + 1], r)) {
    *known = true;
    p.exchange_wait = steps[i + 1].workers[r].exchange_wait;
    p.apply_params = steps[i + 1].workers[r].apply_params;
    p.sync_wait = sync_wait(steps[i], r);
  }
  return p;
}

}  // namespace

PhaseSums phase_sums(const std::vector<StepTiming>& steps, size_t first, size_t last, size_t r) {
  PhaseSums sum;
  for (size_t i = first; i < last && i < steps.size(); ++i) {
    bool known = false;
    const PhaseSums p = step_phases(steps, i, r, &known);
    sum.data_wait += p.data_wait;
    sum.forward += p.forward;
    sum.backward += p.backward;
    sum.exchange_wait += p.exchange_wait;
    sum.apply_params += p.apply_params;
    sum.sync_wait += p.sync_wait;
    sum.bucket_send += p.bucket_send;
  }
  return sum;
}

PhaseShares phase_shares(const std::vector<StepTiming>& steps, size_t first, size_t last,
                         int world_size, double wall_s) {
  PhaseShares f;
  if (wall_s <= 0 || world_size < 1) return f;
  for (size_t i = first; i < last && i < steps.size(); ++i) {
    f.update += steps[i].updated_s - steps[i].gradients_s;
    for (size_t r = 0; r < size_t(world_size); ++r) {
      bool known = false;
      const PhaseSums p = step_phases(steps, i, r, &known);
      f.data_wait += p.data_wait;
      f.forward += p.forward;
      f.backward += p.backward;
      f.exchange += p.bucket_send;
      if (!known) continue;
      // The exchange wait less the part spent waiting for slower workers, step by step.
      f.exchange += std::max(0.0, p.exchange_wait - p.sync_wait);
      f.sync_wait += p.sync_wait;
    }
  }
  f.update /= wall_s;
  const double denom = wall_s * world_size;
  f.data_wait /= denom;
  f.forward /= denom;
  f.backward /= denom;
  f.exchange /= denom;
  f.sync_wait /= denom;
  return f;
}

TimedFigures summarize_steps(const std::vector<StepTiming>& steps, int warmup, int world_size) {
  TimedFigures f;
  f.warmup_steps = warmup;
  const size_t first = std::min(steps.size(), size_t(std::max(0, warmup)));
  if (first >= steps.size() || world_size < 1) return f;
  std::vector<double> step_s;
  for (size_t i = first; i < steps.size(); ++i) {
    const StepTiming& s = steps[i];
    f.samples += s.samples;
    step_s.push_back(s.end_s - s.start_s);
    f.gradient_wait_s += s.gradients_s - s.start_s;
    f.update_s += s.updated_s - s.gradients_s;
  }
  f.steps = int64_t(step_s.size());
  f.seconds = steps.back().end_s - steps[first].start_s;
  f.coordinator_cpu_user_s = steps.back().cpu_user_end_s - steps[first].cpu_user_start_s;
  f.coordinator_cpu_system_s = steps.back().cpu_system_end_s - steps[first].cpu_system_start_s;
  if (f.seconds <= 0) return f;
  f.images_per_s = double(f.samples) / f.seconds;
  std::vector<double> sorted = step_s;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  f.step_s_median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  f.step_s_min = sorted.front();
  f.step_s_max = sorted.back();

  // Shares over the steps whose every phase is known: a step's exchange wait and install
  // arrive with the next step's result, so the window's last step has none and the first
  // timed result's exchange belongs to the warm-up.
  const size_t last = steps.size() - 1;  // exclusive for the shares
  if (last <= first) return f;
  f.shares = phase_shares(steps, first, last, world_size, steps[last - 1].end_s - steps[first].start_s);
  return f;
}

void write_step_trace(const std::string& path, const std::vector<StepTiming>& steps,
                      const std::vector<std::string>& worker_names,
                      const std::map<std::string, std::string>& about) {
  TraceWriter t;
  t.name_process(0, "coordinator");
  t.name_thread(0, 0, "reduce + update");
  for (size_t r = 0; r < worker_names.size(); ++r) {
    t.name_process(int(r) + 1, worker_names[r]);
    t.name_thread(int(r) + 1, 0, "step phases");
  }
  if (steps.empty()) {
    t.write(path, about);
    return;
  }
  const double zero = steps.front().start_s;
  auto us = [&](double s) { return (s - zero) * 1e6; };
  std::vector<double> track_end(worker_names.size(), 0.0);  // no span may start before this
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepTiming& s = steps[i];
    const std::vector<std::pair<std::string, double>> args = {{"step", double(s.step)},
                                                              {"samples", double(s.samples)}};
    t.span(0, 0, "wait for gradients", "coordinator", us(s.start_s), us(s.gradients_s) - us(s.start_s), args);
    t.span(0, 0, "reduce + update", "coordinator", us(s.gradients_s), us(s.updated_s) - us(s.gradients_s), args);
    t.span(0, 0, "send parameters", "coordinator", us(s.updated_s), us(s.end_s) - us(s.updated_s), args);
    for (size_t r = 0; r < s.workers.size() && r < worker_names.size(); ++r) {
      const WorkerStepTiming& w = s.workers[r];
      if (!took_part(s, r)) continue;  // lost before this step
      const int pid = int(r) + 1;
      // Backwards from the result's arrival, clipped so the track never overlaps itself.
      struct Phase { const char* name; double seconds; };
      // Buckets go up during backward; drawn after it, as one span of their total.
      const Phase phases[] = {{"data wait", w.data_wait}, {"forward", w.forward}, {"backward", w.backward},
                              {"send buckets", w.bucket_send}};
      double start = us(w.received_s) - 1e6 * (w.data_wait + w.forward + w.backward);
      for (const Phase& p : phases) {
        const double end = start + 1e6 * p.seconds;
        const double from = std::max(start, track_end[r]);
        if (end > from) t.span(pid, 0, p.name, "worker", from, end - from, args);
        track_end[r] = std::max(track_end[r], end);
        start = end;
      }
      // This step's exchange and install arrive with the next step's result.
      if (i + 1 < steps.size() && took_part(steps[i + 1], r)) {
        // Its gradient's transfer is part of the exchange, so the sync wait comes first.
        const WorkerStepTiming& next = steps[i + 1].workers[r];
        const double from = std::max(us(w.received_s), track_end[r]);
        const double waited = std::min(sync_wait(s, r), next.exchange_wait);
        if (waited > 0) t.span(pid, 0, "sync wait", "worker", from, 1e6 * waited, args);
        t.span(pid, 0, "exchange", "worker", from + 1e6 * waited,
               1e6 * (next.exchange_wait - waited), args);
        t.span(pid, 0, "apply parameters", "worker", from + 1e6 * next.exchange_wait,
               1e6 * next.apply_params, args);
        track_end[r] = from + 1e6 * (next.exchange_wait + next.apply_params);
      }
    }
  }
  t.write(path, about);
}

}  // namespace ts
