// What each global step cost, as the coordinator saw it, and the figures derived from a run of
// steps: the timed window after a warm-up (--warmup-steps) that the report and the sweep use,
// and the timeline (--trace) with one track per worker.
//
// Times are the coordinator's steady clock (common/timing.h). A worker reports durations, not
// timestamps; its spans are placed backwards from the moment its result arrived (backward
// ends there, forward before it, the data wait before that), so the transfer of the gradient
// shows up as part of the exchange. The exchange wait and parameter install a worker reports
// with step s belong to step s-1 (trainer.proto, PhaseTimes).
//
// A worker's exchange wait holds two things: the exchange itself (gradient up, averaging and
// update, parameters down) and its sync wait, the time its gradient sat at the coordinator
// until the last worker's arrived. The coordinator measures the sync wait on its own clock
// (last arrival - this arrival) and the figures below report the two apart: a slow exchange
// and an unbalanced split call for different fixes.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ts {

// A worker's seconds per phase over some steps, each phase attributed to the step it belongs
// to. exchange_wait is the worker's own clock: from packing its gradient to having the
// parameters. sync_wait is the coordinator's: how long that gradient waited at the
// coordinator for the other workers' (max arrival - its arrival), the part of exchange_wait
// owed to imbalance rather than to the exchange. Derived from the step records (phase_sums).
struct PhaseSums {
  double data_wait = 0, forward = 0, backward = 0, exchange_wait = 0, apply_params = 0,
         sync_wait = 0;
  double bucket_send = 0;         // --bucket-kb: inside backward, sending buckets (exchange)
};

// Shares of wall time, averaged over the workers; they need not sum to 1 (the rest is time no
// phase covers: messages in flight, scheduling). exchange: the workers' exchange wait less
// their sync wait (gradient up, averaging and update, parameters down), plus the time their
// backward spent sending buckets (--bucket-kb); update: the
// coordinator's part of it (sum + optimizer + packing); sync_wait: waiting for the slowest
// worker's gradient. The one type the epoch lines, the report, the sweep and autotune use.
struct PhaseShares {
  double data_wait = 0, forward = 0, backward = 0, exchange = 0, update = 0, sync_wait = 0;
  PhaseShares& operator+=(const PhaseShares& o);
  PhaseShares& operator/=(double n);
};

// One worker's part of a step, as its StepResult reported it.
struct WorkerStepTiming {
  double received_s = 0;          // when its StepResult reached the coordinator (0: none)
  int samples = 0;
  double data_wait = 0, forward = 0, backward = 0;
  double exchange_wait = 0, apply_params = 0;  // of the previous step
  double bucket_send = 0;         // this step's, inside backward (--bucket-kb)
};

// The record of one global step: the coordinator's timestamps and each worker's report.
struct StepTiming {
  int64_t step = 0;               // global step
  double start_s = 0;             // the coordinator starts waiting for this step's gradients
  double gradients_s = 0;         // the last gradient arrived
  double updated_s = 0;           // sum + optimizer + packing done
  double end_s = 0;               // parameters sent to every worker
  // The coordinator process's CPU time (user, system; every thread, gRPC's included) at
  // start_s and at end_s (getrusage): what the exchange costs it, apart from waiting.
  double cpu_user_start_s = 0, cpu_system_start_s = 0, cpu_user_end_s = 0, cpu_system_end_s = 0;
  int64_t samples = 0;
  std::vector<WorkerStepTiming> workers;  // by rank
};

// Copies a StepResult's phase times (threadsplit::StepResult; a template so that this header
// needs no protobuf).
template <class StepResult>
void note_result(WorkerStepTiming& w, const StepResult& res) {
  w.samples = res.samples();
  w.data_wait = res.times().data_wait_s();
  w.forward = res.times().forward_s();
  w.backward = res.times().backward_s();
  w.exchange_wait = res.times().exchange_wait_s();
  w.apply_params = res.times().apply_params_s();
  w.bucket_send = res.times().bucket_send_s();
}

// The timed window: every step after the first `warmup` of the run.
struct TimedFigures {
  int warmup_steps = 0;
  int64_t steps = 0, samples = 0;
  double seconds = 0;             // first timed step's start to the last one's end
  double images_per_s = 0;
  double step_s_median = 0, step_s_min = 0, step_s_max = 0;
  // Over the window less its last step (whose exchange is never reported).
  PhaseShares shares;
  double gradient_wait_s = 0, update_s = 0;   // coordinator totals in the window
  // The coordinator process's CPU seconds over the window (first timed step's start to the
  // last one's end, as `seconds`).
  double coordinator_cpu_user_s = 0, coordinator_cpu_system_s = 0;
};

// "shares" in the JSON object `j` (an nlohmann::ordered_json): an epoch's, the timed window's
// or a sweep point's, under the same keys, each value passed through `round`.
template <class Json>
void write_shares(Json& j, const PhaseShares& f, double (*round)(double) = nullptr) {
  auto v = [round](double x) { return round ? round(x) : x; };
  Json& s = j["shares"];
  s["data_wait"] = v(f.data_wait);
  s["forward"] = v(f.forward);
  s["backward"] = v(f.backward);
  s["exchange"] = v(f.exchange);
  s["update"] = v(f.update);
  s["sync_wait"] = v(f.sync_wait);
}

// How long worker r's result of this step waited at the coordinator for the last one.
double sync_wait(const StepTiming& step, size_t r);

// Worker r's phases over steps[first, last): each step's data wait, forward and backward, and
// its exchange wait and install, which arrive with the next step's result (so a step with no
// record after it has none), with the sync wait measured on the same step.
PhaseSums phase_sums(const std::vector<StepTiming>& steps, size_t first, size_t last, size_t r);

// The shares of steps[first, last) in `wall_s` seconds: the coordinator's update over wall_s,
// the workers' phases over world_size x wall_s.
PhaseShares phase_shares(const std::vector<StepTiming>& steps, size_t first, size_t last,
                         int world_size, double wall_s);

// Steps are in the order they ran. A warm-up longer than the run leaves an empty window
// (steps == 0, rates 0).
TimedFigures summarize_steps(const std::vector<StepTiming>& steps, int warmup, int world_size);

// The Chrome trace-event JSON of these steps: pid 0 is the coordinator (wait for gradients,
// reduce+update, send), pid r+1 worker r (data wait, forward, backward, sync wait, exchange,
// apply). `worker_names[r]` labels worker r's track. Throws std::runtime_error when the file
// cannot be written.
void write_step_trace(const std::string& path, const std::vector<StepTiming>& steps,
                      const std::vector<std::string>& worker_names,
                      const std::map<std::string, std::string>& about);

}  // namespace ts
