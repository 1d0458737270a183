// The worker's checks on the coordinator's messages (common/wire_checks.h:
// check_coordinator_message, check_welcome_params): each kind accepted where the worker waits
// for it, and every bad one refused with the sentence the worker exits with. Tag [wire].
#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <vector>

#include "float_packing.h"
#include "trainer.pb.h"
#include "wire_checks.h"

namespace {

using threadsplit::CoordinatorMessage;
using ts::WorkerWaitsFor;

constexpr int64_t kStep = 40;  // the next global step the worker expects

ts::WorkerWireLimits limits() {
  ts::WorkerWireLimits l;
  l.run_id = "run1";
  l.num_params = 3;
  l.max_local_batch = 8;
  return l;
}

std::string check(const CoordinatorMessage& m, WorkerWaitsFor waits) {
  return ts::check_coordinator_message(m, limits(), waits, kStep);
}

std::string packed(std::vector<float> v) { return ts::pack_floats(v.data(), v.size()); }

CoordinatorMessage welcome() {
  CoordinatorMessage m;
  threadsplit::Welcome* w = m.mutable_welcome();
  w->set_run_id("run1");
  w->set_model("seed_cnn");
  w->set_augment("flip,crop");
  w->set_max_local_batch(8);
  w->set_loader_threads(1);
  return m;
}

// A deal of two steps from kStep: 8 of 16 samples, then 0 of 16.
CoordinatorMessage deal() {
  CoordinatorMessage m;
  threadsplit::EpochDeal* d = m.mutable_deal();
  d->set_run_id("run1");
  d->set_first_step(kStep);
  threadsplit::StepShare* s = d->add_steps();
  for (int i = 0; i < 8; ++i) s->add_indices(i);
  s->set_global_batch(16);
  d->add_steps()->set_global_batch(16);
  return m;
}

CoordinatorMessage eval() {
  CoordinatorMessage m;
  threadsplit::EvalRequest* r = m.mutable_eval();
  r->set_run_id("run1");
  r->set_split("validation");
  r->add_indices(3);
  r->set_batch(100);
  return m;
}

CoordinatorMessage params() {
  CoordinatorMessage m;
  m.mutable_params()->set_run_id("run1");
  m.mutable_params()->set_step(kStep);
  m.mutable_params()->set_params(packed({1.f, -2.f, 0.5f}));
  return m;
}

CoordinatorMessage shutdown() {
  CoordinatorMessage m;
  m.mutable_shutdown()->set_run_id("run1");
  m.mutable_shutdown()->set_reason("done");
  return m;
}

}  // namespace

TEST_CASE("a Welcome of a known model and augmentation with positive sizes is accepted first", "[wire]") {
  CHECK(check(welcome(), WorkerWaitsFor::kWelcome) == "");
  CoordinatorMessage m = welcome();
  m.mutable_welcome()->set_augment("none");
  m.mutable_welcome()->set_model("tf_tutorial_cnn");
  CHECK(check(m, WorkerWaitsFor::kWelcome) == "");
}

TEST_CASE("a first message that is not a Welcome is refused", "[wire]") {
  for (const CoordinatorMessage& m : {deal(), params(), eval(), shutdown(), CoordinatorMessage()})
    CHECK(check(m, WorkerWaitsFor::kWelcome) == "the coordinator's first message was not a Welcome");
}

TEST_CASE("a Welcome naming an unknown model is refused with the known ones", "[wire]") {
  CoordinatorMessage m = welcome();
  m.mutable_welcome()->set_model("resnet9000");
  const std::string bad = check(m, WorkerWaitsFor::kWelcome);
  CHECK_THAT(bad, Catch::StartsWith("the coordinator's Welcome: ") && Catch::Contains("resnet9000") &&
                      Catch::Contains("seed_cnn"));
}

TEST_CASE("a Welcome naming an unknown augmentation is refused", "[wire]") {
  CoordinatorMessage m = welcome();
  m.mutable_welcome()->set_augment("rotate");
  CHECK_THAT(check(m, WorkerWaitsFor::kWelcome),
             Catch::StartsWith("the coordinator's Welcome: ") && Catch::Contains("rotate"));
}

TEST_CASE("a Welcome without a batch size or loader threads is refused", "[wire]") {
  const std::string want = "the coordinator's Welcome has no batch size or loader threads";
  CoordinatorMessage m = welcome();
  m.mutable_welcome()->set_max_local_batch(0);
  CHECK(check(m, WorkerWaitsFor::kWelcome) == want);
  m = welcome();
  m.mutable_welcome()->set_loader_threads(-1);
  CHECK(check(m, WorkerWaitsFor::kWelcome) == want);
}

TEST_CASE("the Welcome's parameters must be exactly the model's number of finite floats", "[wire]") {
  threadsplit::Welcome w = welcome().welcome();
  w.set_params(packed({1.f, 2.f, 3.f}));
  CHECK(ts::check_welcome_params(w, 3) == "");
  CHECK(ts::check_welcome_params(w, 4) ==
        "the coordinator sent bad parameters: the parameters has 12 bytes, expected 16 (4 floats)");
  w.set_params(packed({1.f, std::numeric_limits<float>::quiet_NaN(), 3.f}));
  CHECK(ts::check_welcome_params(w, 3) ==
        "the coordinator sent bad parameters: the parameters holds a non-finite value (nan) at position 1");
}

TEST_CASE("the parameters' sentences are unpack_floats' own, as the worker printed them before", "[wire]") {
  float out[4];
  threadsplit::Welcome w;
  const float inf = std::numeric_limits<float>::infinity();
  for (const std::string& bytes : {packed({1.f, 2.f}), packed({0.f, 1.f, -inf}), std::string("abcde")}) {
    w.set_params(bytes);
    CHECK(ts::check_welcome_params(w, 3) ==
          "the coordinator sent bad parameters: " + ts::unpack_floats(bytes, 3, out, "the parameters"));
  }
}

TEST_CASE("a deal from the expected step that fits the worker is accepted between steps and "
          "for parameters", "[wire]") {
  CHECK(check(deal(), WorkerWaitsFor::kInstruction) == "");
  CHECK(check(deal(), WorkerWaitsFor::kParams) == "");
}

TEST_CASE("a deal of another run or from another step is refused", "[wire]") {
  CoordinatorMessage m = deal();
  m.mutable_deal()->set_run_id("run2");
  CHECK(check(m, WorkerWaitsFor::kInstruction) ==
        "the coordinator dealt steps from 40 of run 'run2'; expected step 40 of run run1");
  m = deal();
  m.mutable_deal()->set_first_step(kStep + 1);
  CHECK(check(m, WorkerWaitsFor::kParams) ==
        "the coordinator dealt steps from 41 of run 'run1'; expected step 40 of run run1");
}

TEST_CASE("a deal with a share over the worker's batch or its global batch is refused", "[wire]") {
  CoordinatorMessage m = deal();
  m.mutable_deal()->mutable_steps(1)->add_indices(9);  // the second step: 1 of 16 is fine
  CHECK(check(m, WorkerWaitsFor::kInstruction) == "");
  for (int i = 0; i < 8; ++i) m.mutable_deal()->mutable_steps(1)->add_indices(i);  // 9 of 16
  CHECK(check(m, WorkerWaitsFor::kInstruction) ==
        "the coordinator dealt 9 samples of a global batch of 16 (this worker takes at most 8)");
  m = deal();
  m.mutable_deal()->mutable_steps(0)->set_global_batch(7);  // 8 of 7
  CHECK(check(m, WorkerWaitsFor::kParams) ==
        "the coordinator dealt 8 samples of a global batch of 7 (this worker takes at most 8)");
  m = deal();
  m.mutable_deal()->mutable_steps(1)->set_global_batch(0);  // 0 of 0
  CHECK(check(m, WorkerWaitsFor::kInstruction) ==
        "the coordinator dealt 0 samples of a global batch of 0 (this worker takes at most 8)");
}

TEST_CASE("an evaluation request of a known split is accepted between steps", "[wire]") {
  CHECK(check(eval(), WorkerWaitsFor::kInstruction) == "");
  CoordinatorMessage m = eval();
  m.mutable_eval()->set_split("test");
  CHECK(check(m, WorkerWaitsFor::kInstruction) == "");
}

TEST_CASE("an evaluation request of an unknown split is refused, naming it", "[wire]") {
  CoordinatorMessage m = eval();
  m.mutable_eval()->set_split("train");
  CHECK(check(m, WorkerWaitsFor::kInstruction) ==
        "the coordinator asked to evaluate an unknown split 'train'");
}

TEST_CASE("an evaluation request of another run or without a batch is refused", "[wire]") {
  const std::string want = "the coordinator sent an evaluation request that does not fit this run";
  CoordinatorMessage m = eval();
  m.mutable_eval()->set_run_id("run2");
  CHECK(check(m, WorkerWaitsFor::kInstruction) == want);
  m = eval();
  m.mutable_eval()->set_batch(0);
  CHECK(check(m, WorkerWaitsFor::kInstruction) == want);
}

TEST_CASE("the parameters of the expected step are accepted where parameters are awaited", "[wire]") {
  CHECK(check(params(), WorkerWaitsFor::kParams) == "");
}

TEST_CASE("parameters of another step or run are refused", "[wire]") {
  const std::string want = "expected the parameters of step 40 but the coordinator sent something else";
  CoordinatorMessage m = params();
  m.mutable_params()->set_step(kStep - 1);
  CHECK(check(m, WorkerWaitsFor::kParams) == want);
  m = params();
  m.mutable_params()->set_run_id("run2");
  CHECK(check(m, WorkerWaitsFor::kParams) == want);
}

TEST_CASE("parameters of the wrong size or with a non-finite value are refused", "[wire]") {
  CoordinatorMessage m = params();
  m.mutable_params()->set_params(packed({1.f, 2.f, 3.f, 4.f}));
  CHECK(check(m, WorkerWaitsFor::kParams) ==
        "the coordinator sent bad parameters after step 40: "
        "the parameters has 16 bytes, expected 12 (3 floats)");
  m.mutable_params()->set_params(packed({1.f, 2.f, std::numeric_limits<float>::infinity()}));
  CHECK(check(m, WorkerWaitsFor::kParams) ==
        "the coordinator sent bad parameters after step 40: "
        "the parameters holds a non-finite value (inf) at position 2");
}

TEST_CASE("where parameters are awaited, a Welcome, an evaluation request or nothing is refused", "[wire]") {
  for (const CoordinatorMessage& m : {welcome(), eval(), CoordinatorMessage()})
    CHECK(check(m, WorkerWaitsFor::kParams) ==
          "expected the parameters of step 40 but the coordinator sent something else");
}

TEST_CASE("between steps, a Welcome, parameters or nothing is refused", "[wire]") {
  for (const CoordinatorMessage& m : {welcome(), params(), CoordinatorMessage()})
    CHECK(check(m, WorkerWaitsFor::kInstruction) ==
          "the coordinator sent an unexpected message between steps");
}

TEST_CASE("a Shutdown is accepted between steps and in place of parameters", "[wire]") {
  CHECK(check(shutdown(), WorkerWaitsFor::kInstruction) == "");
  CHECK(check(shutdown(), WorkerWaitsFor::kParams) == "");
}

TEST_CASE("a Shutdown of another run is refused", "[wire]") {
  CoordinatorMessage m = shutdown();
  m.mutable_shutdown()->set_run_id("run2");
  const std::string want = "the coordinator sent a Shutdown of run 'run2'; this worker is in run run1";
  CHECK(check(m, WorkerWaitsFor::kInstruction) == want);
  CHECK(check(m, WorkerWaitsFor::kParams) == want);
}
