// The collective (coordinator/collective.h) and the event queue, driven through a scripted
// transport instead of gRPC: what a gather keeps, drops and refuses, how a loss re-deals the
// epoch, and the gradient sum's rank order.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "collective.h"
#include "epoch_plan.h"
#include "float_packing.h"
#include "gradient_reducer.h"
#include "membership.h"
#include "network.h"
#include "optimizer.h"
#include "progress_display.h"
#include "training_run.h"
#include "step_deadline.h"
#include "timing.h"
#include "worker_events.h"

using namespace ts;
using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

namespace {

const char* const kRun = "run1";

// Records what the collective sends; `respond` plays the workers (it may push replies);
// `tick`, when set, runs on every poll of the queue (a worker that keeps sending).
class ScriptedTransport : public WorkerTransport {
 public:
  ScriptedTransport() : queue_([this](double deadline_s) { return pump(deadline_s); }) {}
  EventQueue& events() override { return queue_; }
  bool send(int rank, std::shared_ptr<const CoordinatorMessage> m) override {
    if (unreachable.count(rank) || (refuse && refuse(rank, *m))) return false;
    sent.push_back({rank, *m});
    if (respond) respond(rank, *m);
    return true;
  }
  void release(int rank) override { released.push_back(rank); }

  void push_result(int rank, int64_t step, uint32_t deal, int samples, std::vector<float> grad = {}) {
    WorkerEvent e;
    e.rank = rank;
    threadsplit::StepResult* r = e.message.mutable_step();
    r->set_run_id(kRun);
    r->set_step(step);
    r->set_deal_id(deal);
    r->set_samples(samples);
    r->set_loss_sum(samples);
    if (!grad.empty()) pack_floats(grad.data(), grad.size(), r->mutable_gradient());
    r->set_buckets(next_buckets);
    queue_.push(std::move(e));
  }
  int next_buckets = 0;  // StepResult.buckets of the results pushed from now on
  void push_bucket(int rank, int64_t step, uint32_t deal, int bucket, std::vector<float> grad) {
    WorkerEvent e;
    e.rank = rank;
    threadsplit::GradientBucket* b = e.message.mutable_bucket();
    b->set_run_id(kRun);
    b->set_step(step);
    b->set_deal_id(deal);
    b->set_bucket(bucket);
    pack_floats(grad.data(), grad.size(), b->mutable_gradient());
    queue_.push(std::move(e));
  }
  void push_closed(int rank, const std::string& why) {
    WorkerEvent e;
    e.rank = rank;
    e.closed = true;
    e.why = why;
    queue_.push(std::move(e));
  }
  std::vector<std::pair<int, CoordinatorMessage>> sent_of(CoordinatorMessage::BodyCase kind) const {
    std::vector<std::pair<int, CoordinatorMessage>> out;
    for (const auto& s : sent)
      if (s.second.body_case() == kind) out.push_back(s);
    return out;
  }

  std::map<int, bool> unreachable;
  std::vector<std::pair<int, CoordinatorMessage>> sent;
  std::vector<int> released;
  std::function<void(int, const CoordinatorMessage&)> respond;
  std::function<bool(int, const CoordinatorMessage&)> refuse;  // true: that send fails
  std::function<void()> tick;

 private:
  // As the service's: waits for one completion until the deadline; false when none came.
  bool pump(double deadline_s) {
    if (!tick) {
      const double left = deadline_s - now_seconds();
      if (left > 0) std::this_thread::sleep_for(std::chrono::microseconds(int64_t(left * 1e6)));
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    tick();
    return true;
  }
  EventQueue queue_;
};

struct Fixture {
  explicit Fixture(int world, const std::string& policy, double deadline_s = 5)
      : members(world, policy, 1.0, transport),
        deadline(deadline_s, deadline_s, deadline_s),
        collective(members, transport, kRun, deadline, 0.5),
        plan(plan_epoch(1, 0, 0, 48, false, 12)) {}
  ScriptedTransport transport;
  Membership members;
  StepDeadline deadline;
  Collective collective;
  EpochPlan plan;
  std::vector<double> arrived = std::vector<double>(8, 0.0);
};

}  // namespace

TEST_CASE("the gradient reducer sums in rank order whatever order the results arrived in", "[collective]") {
  Fixture f(3, "abort");
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  // Float addition is not associative: rank order gives ((0 + 1e8) - 1e8) + 1 = 1 where the
  // arrival order 2, 0, 1 would give ((0 + 1) + 1e8) - 1e8 = 0.
  f.transport.push_result(2, 0, 1, 4, {1.f});
  f.transport.push_result(0, 0, 1, 4, {1e8f});
  f.transport.push_result(1, 0, 1, 4, {-1e8f});
  const auto& results = f.collective.gather_step(0, 0, &f.arrived);
  GradientReducer reducer(1);
  CHECK(reducer.reduce(results, f.members.live_ranks())[0] == 1.f);
  // A share without a gradient (an empty share) adds nothing.
  f.transport.push_result(0, 1, 1, 4, {2.f});
  f.transport.push_result(1, 1, 1, 4);
  f.transport.push_result(2, 1, 1, 4, {3.f});
  CHECK(reducer.reduce(f.collective.gather_step(1, 1, &f.arrived), {0, 1, 2})[0] == 5.f);
}

TEST_CASE("a lost worker's steps are re-dealt among the survivors and results of the old deal are dropped", "[collective]") {
  Fixture f(3, "continue");
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  REQUIRE(f.transport.sent_of(CoordinatorMessage::kDeal).size() == 3);
  f.transport.push_closed(2, "killed");
  f.transport.push_result(0, 0, 1, 4);   // computed under deal 1, before the re-deal: stale
  f.transport.push_result(0, 0, 2, 6);
  f.transport.push_result(1, 0, 2, 6);
  f.collective.gather_step(0, 0, &f.arrived);
  CHECK(f.members.live_ranks() == std::vector<int>{0, 1});
  CHECK(f.transport.released == std::vector<int>{2});
  REQUIRE(f.members.lost_workers().size() == 1);
  CHECK_THAT(f.members.lost_workers()[0], Catch::Contains("left during step 0: killed") &&
                                              Catch::Contains("continuing with 2 of 3 workers"));
  // The re-deal: deal 2, to the two survivors, every remaining step, each keeping its global
  // batch of 12, now in shares of 6.
  const auto deals = f.transport.sent_of(CoordinatorMessage::kDeal);
  REQUIRE(deals.size() == 5);
  for (size_t i = 3; i < 5; ++i) {
    const threadsplit::EpochDeal& d = deals[i].second.deal();
    CHECK(deals[i].first == int(i) - 3);
    CHECK(d.deal_id() == 2);
    CHECK(d.first_step() == 0);
    REQUIRE(d.steps_size() == f.plan.steps());
    CHECK(d.steps(0).indices_size() == 6);
    CHECK(d.steps(0).global_batch() == 12);
  }
}

TEST_CASE("a result that does not fit the step is refused and, under abort, stops the run", "[collective]") {
  Fixture f(2, "abort");
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  SECTION("wrong sample count") {
    f.transport.push_result(0, 0, 1, 5);
    CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived),
                      Catch::Contains("sent a result for 5 samples instead of 6 during step 0"));
  }
  SECTION("a second result") {
    f.transport.push_result(0, 0, 1, 6);
    f.transport.push_result(0, 0, 1, 6);
    CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived), Catch::Contains("sent a second result"));
  }
  SECTION("a result from a deal that was never made") {
    f.transport.push_result(1, 0, 7, 6);
    CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived), Catch::Contains("a result for deal 7"));
  }
  CHECK(f.members.live_ranks().size() == 1);
}

TEST_CASE("the step deadline runs from the start of the gather, so a worker sending stale results is still lost", "[collective]") {
  // Stale means of a deal the rank really had (deal 1, replaced by deal 2 when rank 2 was
  // lost); a deal it never had (0, say) is a protocol violation, refused at once (below).
  Fixture f(3, "continue", /*deadline_s=*/0.3);
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  f.transport.push_closed(2, "killed");
  f.transport.respond = [&](int rank, const CoordinatorMessage& m) {
    if (!m.has_deal()) return;
    if (m.deal().deal_id() == 2 && rank == 0) {
      f.transport.push_result(0, 0, 2, 6);
      // Rank 1 never answers deal 2's step 0 but sends deal 1's every 5 ms.
      f.transport.tick = [&] { f.transport.push_result(1, 0, 1, 4); };
    }
    // After the loss, rank 0 alone answers the re-deal with the whole batch.
    if (m.deal().deal_id() == 3) {
      f.transport.tick = nullptr;
      f.transport.push_result(rank, 0, 3, 12);
    }
  };
  const Stopwatch took;
  f.collective.gather_step(0, 0, &f.arrived);
  CHECK(took.elapsed() < 3.0);
  CHECK(f.members.live_ranks() == std::vector<int>{0});
  REQUIRE(f.members.lost_workers().size() == 2);
  CHECK_THAT(f.members.lost_workers()[1], Catch::Contains("worker 1") &&
                                              Catch::Contains("did not answer during step 0 within 0.3 s"));
}

TEST_CASE("an evaluation round lost to a dead worker is restarted and the abandoned round's results are dropped", "[collective]") {
  Fixture f(2, "continue");
  std::vector<int32_t> indices(10);
  for (int i = 0; i < 10; ++i) indices[size_t(i)] = i;
  auto eval_result = [&](int rank, int64_t round, int samples) {
    WorkerEvent e;
    e.rank = rank;
    threadsplit::EvalResult* r = e.message.mutable_eval();
    r->set_run_id(kRun);
    r->set_round(round);
    r->set_samples(samples);
    r->set_loss_sum(samples);
    r->set_correct(samples / 2);
    f.transport.events().push(std::move(e));
  };
  eval_result(0, 0, 5);
  f.transport.push_closed(1, "exited");
  CHECK_FALSE(f.collective.eval_round("validation", indices, 50, 5));
  eval_result(0, 0, 5);   // late, of round 0: dropped
  eval_result(0, 1, 10);
  const std::vector<WorkerMessage>* results = f.collective.eval_round("validation", indices, 50, 5);
  REQUIRE(results);
  CHECK((*results)[0].eval().round() == 1);
  CHECK((*results)[0].eval().samples() == 10);
  const auto requests = f.transport.sent_of(CoordinatorMessage::kEval);
  REQUIRE(requests.size() == 3);
  CHECK(requests[2].second.eval().indices_size() == 10);
}

TEST_CASE("shutdown collects Goodbyes, counts a closed stream as done and drops anything else", "[collective]") {
  Fixture f(3, "abort");
  f.transport.push_result(0, 3, 1, 4);  // of an aborted step
  WorkerEvent bye;
  bye.rank = 0;
  bye.message.mutable_goodbye()->set_process_threads(7);
  f.transport.events().push(std::move(bye));
  f.transport.push_closed(1, "exited");
  f.transport.unreachable[2] = true;    // nothing to wait for
  const Stopwatch took;
  f.collective.shutdown(false, "done", 5);
  CHECK(took.elapsed() < 1.0);
  REQUIRE(f.members.workers()[0].goodbye);
  CHECK(f.members.workers()[0].goodbye->process_threads() == 7);
  CHECK_FALSE(f.members.workers()[1].goodbye);
  CHECK(f.transport.sent_of(CoordinatorMessage::kShutdown).size() == 2);
}

TEST_CASE("the event queue holds step results back until the gate's count is queued, and nothing else", "[collective]") {
  ScriptedTransport t;
  EventQueue& q = t.events();
  q.set_step_gate(2);
  t.push_result(0, 0, 1, 4);
  Stopwatch held;
  auto e = q.pop(0.2);  // one of two: held until the timeout, then returned
  CHECK(held.elapsed() >= 0.15);
  REQUIRE(e);
  CHECK(e->message.has_step());
  t.push_result(0, 1, 1, 4);
  t.push_result(1, 1, 1, 4);
  held.restart();
  CHECK(q.pop(5));   // two of two: at once
  q.set_step_gate(1);
  CHECK(q.pop(5));
  CHECK(held.elapsed() < 1.0);
  t.push_closed(1, "gone");  // anything else passes the gate at once
  held.restart();
  e = q.pop(5);
  REQUIRE(e);
  CHECK(e->closed);
  CHECK(held.elapsed() < 1.0);
  CHECK_FALSE(q.pop(0.01));
}

TEST_CASE("a run that aborts while a step's parameters are on their way counts that step as done", "[collective]") {
  ScriptedTransport t;
  RunSetup setup;
  setup.options.steps = 2;
  setup.options.eval_every = 0;
  setup.options.on_worker_failure = "abort";
  setup.net = build_network("seed_cnn");
  setup.world_size = 2;
  setup.global_batch = 8;
  setup.split.train_end = 64;
  setup.run_id = kRun;
  setup.optimizer.kind = "sgd";
  setup.optimizer.learning_rate = 0.5;
  Membership members(2, "abort", 1.0, t);
  const std::vector<float> grad(setup.net.num_params, 1.f);
  // Both workers answer step 0 of the deal; rank 1 can no longer be reached for its
  // parameters.
  t.respond = [&](int rank, const CoordinatorMessage& m) {
    if (m.has_deal()) t.push_result(rank, 0, m.deal().deal_id(), 4, grad);
  };
  t.refuse = [](int rank, const CoordinatorMessage& m) { return rank == 1 && m.has_params(); };
  std::vector<float> initial(setup.net.num_params, 0.f);
  TrainingRun run(setup, members, t, initial, make_optimizer(setup.optimizer, setup.net.num_params), 0, 0, 0);
  ProgressDisplay progress(false);
  CHECK_THROWS_AS(run.train(progress), RunAborted);
  // The parameters moved by step 0's update, and the run says step 0 is done: a checkpoint of
  // this state resumes at step 1, not at step 0 with step 0's update applied twice.
  CHECK(run.step() == 1);
  CHECK(run.step_in_epoch() == 1);
  CHECK(run.params()[0] == Approx(-0.5f * 2));
  REQUIRE(run.epochs().size() == 1);
  CHECK(run.epochs()[0].steps == 1);
  CHECK(run.epochs()[0].aborted);
}

// --- Workers that lie (docs/reliability.md, "Workers that lie and runs that diverge") ---

TEST_CASE("a result for a deal the rank was never dealt is a protocol violation, refused at once, and the honest workers are kept", "[collective][liars]") {
  Fixture f(3, "continue", /*deadline_s=*/30);
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  f.transport.push_result(0, 0, 1, 4);
  f.transport.push_result(2, 0, 1, 4);
  // Rank 1 sends the current step under deal 0 (never made) every 5 ms, never its result.
  f.transport.tick = [&] { f.transport.push_result(1, 0, 0, 4); };
  f.transport.respond = [&](int rank, const CoordinatorMessage& m) {
    if (m.has_deal() && m.deal().deal_id() == 2) {
      f.transport.tick = nullptr;
      f.transport.push_result(rank, 0, 2, 6);
    }
  };
  const Stopwatch took;
  f.collective.gather_step(0, 0, &f.arrived);
  CHECK(took.elapsed() < 5.0);  // not the 30 s deadline
  CHECK(f.members.live_ranks() == std::vector<int>{0, 2});
  REQUIRE(f.members.lost_workers().size() == 1);
  CHECK_THAT(f.members.lost_workers()[0],
             Catch::Contains("worker 1 (pid") && Catch::Contains("a result for deal 0 (step 0)") &&
                 Catch::Contains("never dealt (its deals: 1)") && Catch::Contains("protocol violation"));
}

TEST_CASE("a result for a deal not made yet is a protocol violation, refused under abort", "[collective][liars]") {
  Fixture g(2, "abort");
  g.collective.deal_epoch(g.plan, 0, 0, g.plan.steps(), 0);
  g.transport.push_result(1, 0, 2, 6);  // deal 2 does not exist yet
  CHECK_THROWS_WITH(g.collective.gather_step(0, 0, &g.arrived),
                    Catch::Contains("worker 1") && Catch::Contains("a result for deal 2 (step 0), a deal it was never dealt"));
}

TEST_CASE("an evaluation result for a round the rank was never asked for is refused at once", "[collective][liars]") {
  Fixture f(2, "continue", /*deadline_s=*/30);
  std::vector<int32_t> indices(10);
  for (int i = 0; i < 10; ++i) indices[size_t(i)] = i;
  auto eval_result = [&](int rank, int64_t round, int samples) {
    WorkerEvent e;
    e.rank = rank;
    threadsplit::EvalResult* r = e.message.mutable_eval();
    r->set_run_id(kRun);
    r->set_round(round);
    r->set_samples(samples);
    r->set_loss_sum(samples);
    f.transport.events().push(std::move(e));
  };
  eval_result(0, 0, 5);
  eval_result(1, 7, 5);  // round 7 was never asked for
  const Stopwatch took;
  CHECK_FALSE(f.collective.eval_round("validation", indices, 50, 30));
  CHECK(took.elapsed() < 5.0);
  REQUIRE(f.members.lost_workers().size() == 1);
  CHECK_THAT(f.members.lost_workers()[0], Catch::Contains("worker 1") &&
                                              Catch::Contains("round 7, a round it was never asked for"));
}

TEST_CASE("a gradient above --max-grad-norm is refused as an outlier, naming rank, step, norm and bound", "[collective][liars]") {
  Fixture f(2, "abort");
  f.collective.set_max_grad_norm(10);
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  f.transport.push_result(0, 0, 1, 6, {3.f, 4.f});       // norm 5: kept
  f.transport.push_result(1, 0, 1, 6, {1e20f, 0.f});     // finite, but an outlier
  CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived),
                    Catch::Contains("worker 1") && Catch::Contains("L2 norm 1e+20 for step 0") &&
                        Catch::Contains("above --max-grad-norm 10"));
}

TEST_CASE("a non-finite loss from a worker stops the run as diverged, not as a faulty worker", "[collective][liars]") {
  Fixture f(2, "continue");
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  WorkerEvent e;
  e.rank = 1;
  e.closed = true;
  e.fatal = true;
  e.why = "sent a step result with loss sum nan (a non-finite loss), which was refused";
  f.transport.events().push(std::move(e));
  CHECK_THROWS_AS(f.collective.gather_step(0, 0, &f.arrived), RunDiverged);
  CHECK(f.members.lost_workers().empty());  // no policy applied
}

namespace {

// A two-worker run of `steps` steps of seed_cnn in which every worker sends `grad` (its
// first element `first`, the rest 0.01) at every step.
struct DivergingRun {
  DivergingRun(const std::string& optimizer, float first) {
    setup.options.steps = 3;
    setup.options.eval_every = 0;
    setup.options.on_worker_failure = "abort";
    setup.net = build_network("seed_cnn");
    setup.world_size = 2;
    setup.global_batch = 8;
    setup.split.train_end = 64;
    setup.run_id = kRun;
    setup.optimizer.kind = optimizer;
    setup.optimizer.learning_rate = 0.01;
    grad.assign(setup.net.num_params, 0.01f);
    grad[0] = first;
    t.respond = [this](int rank, const CoordinatorMessage& m) {
      if (m.has_deal()) t.push_result(rank, m.deal().first_step(), m.deal().deal_id(), 4, grad);
      if (m.has_params() && m.params().step() + 1 < 3) t.push_result(rank, m.params().step() + 1, 1, 4, grad);
    };
  }
  ScriptedTransport t;
  RunSetup setup;
  std::vector<float> grad;
};

}  // namespace

TEST_CASE("a finite gradient of 1e25 under Adam overflows v: the run diverges and keeps the last good state", "[collective][liars]") {
  DivergingRun d("adam", 1e25f);  // 0.001 * g * g overflows float at once
  Membership members(2, "abort", 1.0, d.t);
  const std::vector<float> initial(d.setup.net.num_params, 0.5f);
  TrainingRun run(d.setup, members, d.t, initial, make_optimizer(d.setup.optimizer, d.setup.net.num_params), 0, 0, 0);
  ProgressDisplay progress(false);
  CHECK_THROWS_WITH(run.train(progress), Catch::StartsWith("the run diverged at step 0 (the optimizer state 'v': inf at") &&
                                             Catch::Contains("after the update"));
  CHECK(run.step() == 0);
  CHECK(run.params() == initial);  // the update was undone
  CHECK(run.optimizer().iterations() == 0);
  for (const auto& slot : run.optimizer().slots())
    for (float x : slot.values) REQUIRE(x == 0.f);
}

TEST_CASE("a gradient sum that overflows stops the run as diverged before the update", "[collective][liars]") {
  DivergingRun d("sgd", 3e38f);  // each worker's is finite, their sum is not
  Membership members(2, "abort", 1.0, d.t);
  const std::vector<float> initial(d.setup.net.num_params, 0.5f);
  TrainingRun run(d.setup, members, d.t, initial, make_optimizer(d.setup.optimizer, d.setup.net.num_params), 0, 0, 0);
  ProgressDisplay progress(false);
  CHECK_THROWS_WITH(run.train(progress), Catch::StartsWith("the run diverged at step 0 (the gradient sum: inf at ") &&
                                             Catch::Contains(" element 0 (flat index 0)"));
  CHECK(run.step() == 0);
  CHECK(run.params() == initial);
}

TEST_CASE("a bucketed gather sums the buckets as they come and refuses buckets that break the protocol", "[collective][buckets]") {
  // A network-free plan: two buckets of a 3-float gradient, [1, 3) first, then [0, 1).
  Fixture f(2, "abort");
  GradientReducer reducer(3);
  reducer.set_buckets({{1, 3}, {0, 1}});
  f.collective.set_bucket_reducer(&reducer);
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  f.transport.next_buckets = 2;
  SECTION("summed in rank order, out of arrival order") {
    f.transport.push_bucket(1, 0, 1, 0, {-1e8f, 2.f});
    f.transport.push_bucket(0, 0, 1, 0, {1e8f, 3.f});
    f.transport.push_bucket(1, 0, 1, 1, {1.f});
    f.transport.push_result(1, 0, 1, 6);
    f.transport.push_bucket(0, 0, 1, 1, {4.f});
    f.transport.push_result(0, 0, 1, 6);
    f.collective.gather_step(0, 0, &f.arrived);
    CHECK(reducer.sum() == std::vector<float>{5.f, 0.f, 5.f});  // (0 + 1e8) - 1e8 = 0, not 2 - 2
  }
  SECTION("a result before all of its buckets") {
    f.transport.push_bucket(0, 0, 1, 0, {1.f, 1.f});
    f.transport.push_result(0, 0, 1, 6);
    CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived),
                      Catch::Contains("a result announcing 2 gradient buckets after 1 of the plan's 2"));
  }
  SECTION("a bucket after its step's result") {
    f.transport.push_bucket(0, 0, 1, 0, {1.f, 1.f});
    f.transport.push_bucket(0, 0, 1, 1, {1.f});
    f.transport.push_result(0, 0, 1, 6);
    f.transport.push_bucket(0, 0, 1, 1, {1.f});
    CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived),
                      Catch::Contains("a gradient bucket after its step result"));
  }
  SECTION("a bucket of a deal that was never made") {
    f.transport.push_bucket(1, 0, 9, 0, {1.f, 1.f});
    CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived),
                      Catch::Contains("a gradient bucket for deal 9, a deal it was never dealt"));
  }
  SECTION("a bucket of the wrong size") {
    f.transport.push_bucket(1, 0, 1, 1, {1.f, 1.f});
    CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived),
                      Catch::Contains("gradient bucket 1 of 8 bytes instead of 4"));
  }
  CHECK(f.members.live_ranks().size() <= 2);
}

TEST_CASE("without --bucket-kb a gradient bucket is refused", "[collective][buckets]") {
  Fixture f(2, "abort");
  GradientReducer reducer(3);  // no plan
  f.collective.set_bucket_reducer(&reducer);
  f.collective.deal_epoch(f.plan, 0, 0, f.plan.steps(), 0);
  f.transport.push_bucket(0, 0, 1, 0, {1.f});
  CHECK_THROWS_WITH(f.collective.gather_step(0, 0, &f.arrived),
                    Catch::Contains("a gradient bucket, which this run did not ask for"));
}
