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

// A worker's seconds per phase. exchange_wait is the worker's own clock: from packing its
// gradient to having the parameters. sync_wait is the coordinator's: how long that gradient
// waited at the coordinator for the other workers' (max arrival - its arrival), the part of
// exchange_wait owed to imbalance rather than to the exchange.
struct PhaseSums {
  double data_wait = 0, forward = 0, backward = 0, exchange_wait = 0, apply_params = 0,
         sync_wait = 0;
  // A StepResult's PhaseTimes (a template, as note_result below).
  template <class PhaseTimes>
  void add_times(const PhaseTimes& t) {
    data_wait += t.data_wait_s();
    forward += t.forward_s();
    backward += t.backward_s();
    exchange_wait += t.exchange_wait_s();
    apply_params += t.apply_params_s();
  }
  void add(const PhaseSums& o) {
    data_wait += o.data_wait;
    forward += o.forward;
    backward += o.backward;
    exchange_wait += o.exchange_wait;
    apply_params += o.apply_params;
    sync_wait += o.sync_wait;
  }
};

struct WorkerStepTiming {
  double received_s = 0;          // when its StepResult reached the coordinator's handler
  int samples = 0;
  double data_wait = 0, forward = 0, backward = 0;
  double exchange_wait = 0, apply_params = 0;  // of the previous step
};

struct StepTiming {
  int64_t step = 0;               // global step
  double start_s = 0;             // the coordinator starts waiting for this step's gradients
  double gradients_s = 0;         // the last gradient arrived
  double updated_s = 0;           // sum + optimizer + packing done
  double end_s = 0;               // parameters sent to every worker
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
}

// The timed window: every step after the first `warmup` of the run.
struct TimedFigures {
  int warmup_steps = 0;
  int64_t steps = 0, samples = 0;
  double seconds = 0;             // first timed step's start to the last one's end
  double images_per_s = 0;
  double step_s_median = 0, step_s_min = 0, step_s_max = 0;
  // Shares of wall time, averaged over workers, over the window less its last step (whose
  // exchange is never reported); they need not sum to 1 (the rest is time no phase covers:
  // messages in flight, scheduling).
  // exchange: the workers' exchange wait less their sync wait (update included); update: the
  // coordinator's sum + optimizer + packing; sync: waiting for the slowest worker's gradient.
  double data_share = 0, forward_share = 0, backward_share = 0, exchange_share = 0,
         update_share = 0, sync_share = 0;
  double gradient_wait_s = 0, update_s = 0;   // coordinator totals in the window
};

// "shares" in the JSON object `j` (an nlohmann::ordered_json): an epoch's (EpochRecord), the
// timed window's (TimedFigures) or a sweep point's (PointResult), the same fields under the
// same keys, each passed through `round`.
template <class Json, class Figures>
void write_shares(Json& j, const Figures& f, double (*round)(double) = nullptr) {
  auto v = [round](double x) { return round ? round(x) : x; };
  Json& s = j["shares"];
  s["data_wait"] = v(f.data_share);
  s["forward"] = v(f.forward_share);
  s["backward"] = v(f.backward_share);
  s["exchange"] = v(f.exchange_share);
  s["update"] = v(f.update_share);
  s["sync_wait"] = v(f.sync_share);
}

// How long worker r's result of this step waited at the coordinator for the last one.
double sync_wait(const StepTiming& step, size_t r);

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
