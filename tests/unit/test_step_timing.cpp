// The timed window after the warm-up, and the --trace file: valid trace-event JSON with one
// track per worker plus the coordinator's.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "json_io.h"
#include "step_timing.h"
#include "trace_writer.h"

namespace {

// Steps of 1 s each: worker phases 0.1 data, 0.3 forward, 0.4 backward, results arriving
// 0.8 s into the step, worker r's 0.01 r s before the last (so its sync wait is 0.01 r s);
// the update takes 0.05 s; exchange wait 0.2 s reported with the next step.
std::vector<ts::StepTiming> steady_steps(int n, int workers, double first_step_s = 1.0) {
  std::vector<ts::StepTiming> steps;
  double t = 100;
  for (int i = 0; i < n; ++i) {
    const double len = i == 0 ? first_step_s : 1.0;
    ts::StepTiming s;
    s.step = i;
    s.start_s = t;
    s.gradients_s = t + 0.8 * len;
    s.updated_s = s.gradients_s + 0.05;
    s.end_s = t + len;
    s.samples = 128;
    for (int r = 0; r < workers; ++r) {
      ts::WorkerStepTiming w;
      w.received_s = s.gradients_s - 0.01 * r;
      w.samples = 128 / workers;
      w.data_wait = 0.1;
      w.forward = 0.3;
      w.backward = 0.4;
      w.exchange_wait = i == 0 ? 0 : 0.2;
      w.apply_params = i == 0 ? 0 : 0.01;
      s.workers.push_back(w);
    }
    steps.push_back(s);
    t += len;
  }
  return steps;
}

}  // namespace

TEST_CASE("the coordinator's CPU time is counted over the timed window only", "[timing]") {
  // Per step 0.02 s user and 0.01 s system, the warm-up step 5 s user; between steps
  // (progress, checkpoints) 0.001 s more, which the window's wall time covers too.
  auto steps = steady_steps(6, 2);
  double user = 0, sys = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    steps[i].cpu_user_start_s = user;
    steps[i].cpu_system_start_s = sys;
    user += i == 0 ? 5.0 : 0.02;
    sys += 0.01;
    steps[i].cpu_user_end_s = user;
    steps[i].cpu_system_end_s = sys;
    user += 0.001;
  }
  const ts::TimedFigures warm = ts::summarize_steps(steps, 1, 2);
  CHECK(warm.coordinator_cpu_user_s == Approx(5 * 0.02 + 4 * 0.001));
  CHECK(warm.coordinator_cpu_system_s == Approx(5 * 0.01));
  const ts::TimedFigures all = ts::summarize_steps(steps, 0, 2);
  CHECK(all.coordinator_cpu_user_s == Approx(5.0 + 5 * 0.02 + 5 * 0.001));
}

TEST_CASE("the timed window leaves the warm-up steps out", "[timing]") {
  // A slow first step (10 s) must not show in the figures once it is warm-up.
  auto steps = steady_steps(11, 2, 10.0);
  // The first step's exchange (reported with step 1) was a long warm-up wait: not timed.
  for (auto& w : steps[1].workers) w.exchange_wait = 9.0;
  const ts::TimedFigures all = ts::summarize_steps(steps, 0, 2);
  const ts::TimedFigures warm = ts::summarize_steps(steps, 1, 2);
  CHECK(all.steps == 11);
  CHECK(all.seconds == Approx(20));
  CHECK(warm.steps == 10);
  CHECK(warm.samples == 1280);
  CHECK(warm.seconds == Approx(10));
  CHECK(warm.images_per_s == Approx(128));
  CHECK(warm.step_s_median == Approx(1));
  CHECK(warm.step_s_max == Approx(1));
  CHECK(warm.shares.data_wait == Approx(0.1));
  CHECK(warm.shares.forward == Approx(0.3));
  CHECK(warm.shares.backward == Approx(0.4));
  CHECK(warm.shares.update == Approx(0.05));
  // Shares cover steps 1..9 (step 10's exchange is never reported): 9 x 0.2 s of exchange wait
  // per worker, less worker 1's 9 x 0.01 s of sync wait, over 2 workers x 9 s. The update is
  // part of the exchange (the workers wait through it) and also shown on its own.
  CHECK(warm.shares.exchange == Approx((1.8 + 1.8 - 0.09) / 18));
  CHECK(warm.shares.sync_wait == Approx(0.09 / 18));
  CHECK(ts::sync_wait(steps[3], 0) == Approx(0));
  CHECK(ts::sync_wait(steps[3], 1) == Approx(0.01));
  // A warm-up covering the whole run leaves nothing to time.
  const ts::TimedFigures none = ts::summarize_steps(steps, 11, 2);
  CHECK(none.steps == 0);
  CHECK(none.images_per_s == 0);
}

TEST_CASE("the trace is valid trace-event JSON with one track per worker and the coordinator's", "[timing]") {
  const std::string dir = std::string(TEST_TMP_DIR);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/trace_test.json";
  const auto steps = steady_steps(4, 2);
  ts::write_step_trace(path, steps, {"worker 0 (cores 0)", "worker 1 (cores 1)"}, {{"model", "seed_cnn"}});
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const ts::JsonNode doc = ts::parse_json(text.str(), path);
  CHECK(doc["otherData"]["model"].str() == "seed_cnn");
  const ts::JsonNode events = doc["traceEvents"];
  std::map<int, std::string> process_names;
  std::map<int, std::set<std::string>> phases;
  std::map<int, double> last_end;
  for (const ts::JsonNode& e : events.items()) {
    const std::string ph = e["ph"].str();
    REQUIRE((ph == "M" || ph == "X"));
    const int pid = int(e["pid"].num());
    if (ph == "M") {
      if (e["name"].str() == "process_name") process_names[pid] = e["args"]["name"].str();
      continue;
    }
    CHECK(e["dur"].num() >= 0);
    CHECK(e["ts"].num() >= 0);
    phases[pid].insert(e["name"].str());
    // Spans on one track never overlap (the viewers nest or garble overlapping ones).
    if (last_end.count(pid)) CHECK(e["ts"].num() >= last_end[pid] - 1e-3);
    last_end[pid] = e["ts"].num() + e["dur"].num();
  }
  CHECK(process_names[0] == "coordinator");
  CHECK(process_names[1] == "worker 0 (cores 0)");
  CHECK(process_names[2] == "worker 1 (cores 1)");
  CHECK(phases[0] == std::set<std::string>{"wait for gradients", "reduce + update", "send parameters"});
  // Worker 0's result is always the last in, so it never waits for the other.
  CHECK(phases[1] == std::set<std::string>{"data wait", "forward", "backward", "exchange",
                                           "apply parameters"});
  CHECK(phases[2] == std::set<std::string>{"data wait", "forward", "backward", "sync wait",
                                           "exchange", "apply parameters"});
}

TEST_CASE("a straggler's delay is sync wait for the others, not exchange", "[timing]") {
  // Worker 1 computes 0.3 s longer on every step; worker 0's gradient waits for it, so worker
  // 0 reports 0.3 s more exchange wait. Both then see the same 0.1 s exchange.
  std::vector<ts::StepTiming> steps;
  double t = 0;
  for (int i = 0; i < 6; ++i) {
    ts::StepTiming s;
    s.step = i;
    s.start_s = t;
    s.gradients_s = t + 1.2;
    s.updated_s = t + 1.22;
    s.end_s = t + 1.25;
    s.samples = 2;
    for (int r = 0; r < 2; ++r) {
      ts::WorkerStepTiming w;
      w.samples = 1;
      w.forward = r == 0 ? 0.9 : 1.2;
      w.received_s = t + (r == 0 ? 0.9 : 1.2);
      w.exchange_wait = i == 0 ? 0 : (r == 0 ? 0.4 : 0.1);
      s.workers.push_back(w);
    }
    steps.push_back(s);
    t = s.end_s + 0.05;  // the parameters' way down and the install
  }
  const ts::TimedFigures f = ts::summarize_steps(steps, 1, 2);
  // Steps 1..4 carry a known exchange: 4 x (0.1 + 0.1) s of exchange and 4 x 0.3 s of sync
  // wait, over 2 workers x (steps[1].start .. steps[4].end) = 2 x 5.15 s.
  const double span = steps[4].end_s - steps[1].start_s;
  CHECK(f.shares.exchange == Approx(0.8 / (2 * span)));
  CHECK(f.shares.sync_wait == Approx(1.2 / (2 * span)));
  CHECK(ts::sync_wait(steps[2], 0) == Approx(0.3));
  CHECK(ts::sync_wait(steps[2], 1) == Approx(0));
  CHECK(ts::sync_wait(steps[2], 7) == 0);  // no such worker
}

TEST_CASE("the trace writer names tracks and clamps negative durations", "[timing]") {
  ts::TraceWriter t;
  t.name_process(3, "a \"quoted\" name");
  t.name_thread(3, 0, "main");
  t.span(3, 0, "x", "cat", 5, -2, {{"step", 1}});
  const ts::JsonNode doc = ts::parse_json(t.json(), "the trace");
  const ts::JsonNode ev = doc["traceEvents"];
  bool saw_span = false;
  for (const ts::JsonNode& e : ev.items())
    if (e["ph"].str() == "X") {
      saw_span = true;
      CHECK(e["dur"].num() == 0);
      CHECK(e["args"]["step"].num() == 1);
    } else if (e["name"].str() == "process_name") {
      CHECK(e["args"]["name"].str() == "a \"quoted\" name");
    }
  CHECK(saw_span);
  CHECK(doc["displayTimeUnit"].str() == "ms");
}

TEST_CASE("a worker's phases of a step take the exchange its next result reports", "[timing]") {
  const auto steps = steady_steps(4, 2);
  // Steps 0..2 each have a next record carrying their exchange (0.2) and install (0.01); the
  // last step's exchange is not known yet.
  const ts::PhaseSums p = ts::phase_sums(steps, 0, 4, 1);
  CHECK(p.data_wait == Approx(0.4));
  CHECK(p.forward == Approx(1.2));
  CHECK(p.exchange_wait == Approx(0.6));
  CHECK(p.apply_params == Approx(0.03));
  CHECK(p.sync_wait == Approx(0.03));  // 0.01 s on each step whose exchange is known
  // An epoch's shares over its own wall time: 4 steps in 4 s, two workers.
  const ts::PhaseShares s = ts::phase_shares(steps, 0, 4, 2, 4.0);
  CHECK(s.forward == Approx(0.3));
  CHECK(s.update == Approx(0.05));
  CHECK(s.sync_wait == Approx((0.0 + 0.03) / 8));
  CHECK(s.exchange == Approx((0.6 + (0.6 - 0.03)) / 8));
}

TEST_CASE("a worker lost mid-run adds no phases, and no sync wait, to the steps after it left", "[timing]") {
  auto steps = steady_steps(6, 2);
  for (size_t i = 3; i < steps.size(); ++i) steps[i].workers[1] = ts::WorkerStepTiming{};
  const ts::PhaseSums gone = ts::phase_sums(steps, 3, 6, 1);
  CHECK(gone.forward == 0);
  CHECK(gone.sync_wait == 0);
  // Before: it waited 0.01 s per step for worker 0 at most, never the whole step.
  const ts::TimedFigures f = ts::summarize_steps(steps, 0, 2);
  CHECK(f.shares.sync_wait < 0.01);
  CHECK(ts::phase_sums(steps, 0, 6, 1).sync_wait == Approx(0.02));  // steps 0 and 1
}
