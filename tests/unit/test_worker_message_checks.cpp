// The coordinator's checks of what its workers send (common/wire_checks.h: check_hello_message,
// check_worker_message), the other direction of test_coordinator_message_checks.cpp.
#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <vector>

#include "float_packing.h"
#include "grpc_settings.h"
#include "wire_checks.h"

using threadsplit::WorkerMessage;

namespace {

ts::WireLimits limits() {
  ts::WireLimits l;
  l.run_id = "run1";
  l.num_params = 3;
  l.max_samples = 8;
  l.world_size = 2;
  return l;
}

WorkerMessage step_result(int samples, std::vector<float> grad) {
  WorkerMessage m;
  threadsplit::StepResult* r = m.mutable_step();
  r->set_run_id("run1");
  r->set_step(4);
  r->set_samples(samples);
  r->set_correct(samples / 2);
  r->set_loss_sum(1.5);
  if (!grad.empty()) ts::pack_floats(grad.data(), grad.size(), r->mutable_gradient());
  return m;
}

std::string check(const WorkerMessage& m, bool* nonfinite = nullptr) {
  bool n = false;
  const std::string why = ts::check_worker_message(m, limits(), &n);
  if (nonfinite) *nonfinite = n;
  return why;
}

}  // namespace

TEST_CASE("a step result of the run, in bounds, with a finite gradient of the model's size is accepted", "[wire]") {
  bool nonfinite = true;
  CHECK(check(step_result(8, {1.f, 2.f, 3.f}), &nonfinite).empty());
  CHECK_FALSE(nonfinite);
  CHECK(check(step_result(0, {})).empty());  // an empty share may come without a gradient
}

TEST_CASE("a step result of another run, with impossible counts or loss, or a wrong-sized gradient is refused", "[wire]") {
  WorkerMessage m = step_result(4, {1.f, 2.f, 3.f});
  m.mutable_step()->set_run_id("other");
  CHECK(check(m) == "a step result of run 'other'");
  CHECK(check(step_result(9, {1.f, 2.f, 3.f})) == "a step result for 9 samples (at most 8 are ever dealt)");
  m = step_result(4, {1.f, 2.f, 3.f});
  m.mutable_step()->set_correct(5);
  CHECK(check(m) == "a step result with 5 correct of 4");
  m = step_result(4, {1.f, 2.f, 3.f});
  m.mutable_step()->set_loss_sum(std::numeric_limits<double>::quiet_NaN());
  CHECK_THAT(check(m), Catch::StartsWith("a step result with loss sum"));
  m = step_result(4, {1.f, 2.f, 3.f});
  m.mutable_step()->set_step(-1);
  CHECK(check(m) == "a step result for step -1");
  CHECK(check(step_result(4, {1.f, 2.f})) == "a gradient of 8 bytes instead of 12");
  CHECK(check(step_result(4, {})) == "a gradient of 0 bytes instead of 12");
}

TEST_CASE("a non-finite gradient is refused and flagged, so the run stops rather than blames the worker", "[wire]") {
  bool nonfinite = false;
  const std::string why =
      check(step_result(4, {1.f, std::numeric_limits<float>::infinity(), 3.f}), &nonfinite);
  CHECK_THAT(why, Catch::StartsWith("a non-finite gradient") && Catch::Contains("at index 1"));
  CHECK(nonfinite);
}

TEST_CASE("evaluation results, Goodbyes and stray kinds are checked after Hello", "[wire]") {
  WorkerMessage e;
  threadsplit::EvalResult* r = e.mutable_eval();
  r->set_run_id("run1");
  r->set_round(0);
  r->set_samples(10);
  r->set_correct(3);
  r->set_loss_sum(2);
  CHECK(check(e).empty());
  r->set_correct(11);
  CHECK(check(e) == "an evaluation result with impossible counts or loss");
  r->set_correct(3);
  r->set_run_id("other");
  CHECK(check(e) == "an evaluation result of run 'other'");
  WorkerMessage g;
  g.mutable_goodbye()->set_run_id("other");
  CHECK(check(g) == "a Goodbye of another run");
  g.mutable_goodbye()->set_run_id("run1");
  CHECK(check(g).empty());
  WorkerMessage h;
  h.mutable_hello();
  CHECK(check(h) == "a second Hello");
  CHECK(check(WorkerMessage()) == "an empty message");
}

TEST_CASE("a Hello of another protocol or build, or with an oversized token or bad rank, is refused", "[wire]") {
  threadsplit::Hello h;
  h.set_protocol_version(ts::kProtocolVersion);
  h.set_rank(-1);
  CHECK(ts::check_hello_message(h, ts::kProtocolVersion).empty());
  h.mutable_versions()->set_threadsplit(ts::threadsplit_version());
  h.mutable_versions()->set_networks(ts::networks_fingerprint());
  CHECK(ts::check_hello_message(h, ts::kProtocolVersion).empty());
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion + 1), Catch::StartsWith("protocol version"));
  h.mutable_versions()->set_threadsplit("0.0.0-other");
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion), Catch::Contains("the worker is threadsplit 0.0.0-other"));
  h.mutable_versions()->set_threadsplit(ts::threadsplit_version());
  h.mutable_versions()->set_networks("deadbeef");
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion), Catch::Contains("built from other sources"));
  h.mutable_versions()->set_networks(ts::networks_fingerprint());
  h.set_run_token(std::string(1025, 'x'));
  CHECK(ts::check_hello_message(h, ts::kProtocolVersion) == "a run token of 1025 bytes");
  h.set_run_token("t");
  h.set_rank(-2);
  CHECK(ts::check_hello_message(h, ts::kProtocolVersion) == "rank -2");
}
