// --respawn's pure logic (coordinator/respawner.h) driven through a scripted transport and
// scripted hooks, no processes: the budget, what a replacement that joins or does not join
// leaves behind, the old process's queued events dropped, the collective re-dealing among the
// live ranks including the readmitted one, and the flag checks.
#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "collective.h"
#include "epoch_plan.h"
#include "membership.h"
#include "respawner.h"
#include "run_options.h"
#include "step_deadline.h"
#include "timing.h"
#include "worker_events.h"

using namespace ts;
using threadsplit::CoordinatorMessage;

namespace {

const char* const kRun = "run1";

class Transport : public WorkerTransport {
 public:
  Transport() : queue_([](double deadline_s) {
    const double left = deadline_s - now_seconds();
    if (left > 0) std::this_thread::sleep_for(std::chrono::microseconds(int64_t(left * 1e6)));
    return false;
  }) {}
  EventQueue& events() override { return queue_; }
  bool send(int rank, std::shared_ptr<const CoordinatorMessage> m) override {
    sent.push_back({rank, *m});
    return true;
  }
  void release(int rank) override { released.push_back(rank); }
  void push_result(int rank, int64_t step, uint32_t deal, int samples) {
    WorkerEvent e;
    e.rank = rank;
    threadsplit::StepResult* r = e.message.mutable_step();
    r->set_run_id(kRun);
    r->set_step(step);
    r->set_deal_id(deal);
    r->set_samples(samples);
    queue_.push(std::move(e));
  }
  std::vector<std::pair<int, CoordinatorMessage>> deals() const {
    std::vector<std::pair<int, CoordinatorMessage>> out;
    for (const auto& s : sent)
      if (s.second.has_deal()) out.push_back(s);
    return out;
  }
  std::vector<std::pair<int, CoordinatorMessage>> sent;
  std::vector<int> released;

 private:
  EventQueue queue_;
};

threadsplit::Hello hello_from(int64_t pid) {
  threadsplit::Hello h;
  h.mutable_binding()->set_pid(int32_t(pid));
  return h;
}

// Hooks that "start" pids 100, 101, ... and let them join unless `refuse_join` is set.
struct Script {
  int started = 0;
  bool refuse_join = false;
  bool cannot_start = false;
  Respawner::Hooks hooks() {
    Respawner::Hooks h;
    h.start = [this](int) {
      if (cannot_start) throw std::runtime_error("exec of threadsplit_worker: No such file");
      Respawner::Started s;
      s.pid = 100 + started++;
      s.cores = "1";
      return s;
    };
    h.join = [this](int, const Respawner::Started& s, std::string* why) -> std::optional<threadsplit::Hello> {
      if (refuse_join) {
        *why = "did not join within 1 s (--connect-timeout)";
        return std::nullopt;
      }
      return hello_from(s.pid);
    };
    return h;
  }
};

std::string refusal(std::vector<std::string> args) {
  std::vector<char*> argv;
  static char prog[] = "threadsplit";
  argv.push_back(prog);
  for (auto& a : args) argv.push_back(&a[0]);
  try {
    validate_options(parse_run_options(int(argv.size()), argv.data()));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("respawner: a lost rank is replaced at the next boundary and counts again, within the budget",
          "[respawn]") {
  Transport t;
  Membership members(2, "continue", 1.0, t);
  Script script;
  Respawner respawner(1, members, t.events(), script.hooks());
  CHECK_FALSE(respawner.due());
  members.lose(1, "was killed by signal 9 (Killed) during step 3");
  CHECK(members.live_count() == 1);
  REQUIRE(respawner.due());
  // What the old process left in the queue is not the new one's; rank 0's stays.
  t.push_result(1, 3, 1, 6);
  t.push_result(0, 3, 1, 6);
  CHECK(respawner.bring_back(4) == std::vector<int>{1});
  CHECK_FALSE(respawner.due());
  CHECK(members.alive(1));
  CHECK(members.live_count() == 2);
  CHECK(members.live_index(1) == 1);
  CHECK(members.workers()[1].pid == 100);
  CHECK(members.workers()[1].exit.empty());
  auto e = t.events().pop(0);
  REQUIRE(e);
  CHECK(e->rank == 0);
  CHECK_FALSE(t.events().pop(0));
  REQUIRE(respawner.respawns().size() == 1);
  const RespawnRecord& r = respawner.respawns()[0];
  CHECK(r.rank == 1);
  CHECK(r.old_pid == -1);  // never adopted here: no process
  CHECK(r.new_pid == 100);
  CHECK(r.step == 4);
  CHECK(r.outcome == "rejoined");
  CHECK_THAT(r.why, Catch::Contains("killed by signal 9"));
  // The budget is spent: the next loss is dropped as under continue.
  members.lose(1, "was killed by signal 9 (Killed) during step 9");
  CHECK_FALSE(respawner.due());
  CHECK(members.live_count() == 1);
  CHECK(respawner.used() == 1);
  CHECK(members.lost_workers().size() == 2);
}

TEST_CASE("respawner: a replacement that does not join or cannot start is recorded and the run "
          "goes on without it, its try spent",
          "[respawn]") {
  Transport t;
  Membership members(3, "continue", 1.0, t);
  Script script;
  Respawner respawner(2, members, t.events(), script.hooks());
  SECTION("does not join") {
    script.refuse_join = true;
    members.lose(2, "left during step 5");
    CHECK(respawner.bring_back(6).empty());
    REQUIRE(respawner.respawns().size() == 1);
    CHECK(respawner.respawns()[0].new_pid == 0);
    CHECK_THAT(respawner.respawns()[0].outcome, Catch::Contains("did not join within 1 s"));
  }
  SECTION("cannot start") {
    script.cannot_start = true;
    members.lose(2, "left during step 5");
    CHECK(respawner.bring_back(6).empty());
    REQUIRE(respawner.respawns().size() == 1);
    CHECK_THAT(respawner.respawns()[0].outcome, Catch::Contains("could not be started: exec of"));
  }
  CHECK_FALSE(members.alive(2));
  CHECK(members.live_count() == 2);
  CHECK(respawner.used() == 1);
  CHECK_FALSE(respawner.due());
  // One try is left, and a later loss takes it.
  script.refuse_join = false;
  script.cannot_start = false;
  members.lose(1, "left during step 8");
  CHECK(respawner.due());
  CHECK(respawner.bring_back(9) == std::vector<int>{1});
  CHECK(members.alive(1));
  CHECK(respawner.used() == 2);
}

TEST_CASE("respawner: the readmitted rank is dealt its share of the rest of the epoch under a new "
          "deal, and the old deal's results are dropped",
          "[respawn]") {
  Transport t;
  Membership members(2, "continue", 1.0, t);
  StepDeadline deadline(5, 5, 5);
  Collective collective(members, t, kRun, deadline, 0.5);
  const EpochPlan plan = plan_epoch(1, 0, 0, 48, false, 12);
  Script script;
  Respawner respawner(1, members, t.events(), script.hooks());
  collective.deal_epoch(plan, 0, 0, plan.steps(), 0);  // deal 1
  // Rank 1 is lost during step 0: rank 0 alone carries it under deal 2.
  WorkerEvent closed;
  closed.rank = 1;
  closed.closed = true;
  closed.why = "killed";
  t.events().push(std::move(closed));
  t.push_result(0, 0, 2, 12);
  collective.gather_step(0, 0, nullptr);
  CHECK(members.live_count() == 1);
  // At the boundary before step 1 the replacement joins and the epoch is re-dealt (deal 3).
  REQUIRE(respawner.bring_back(1) == std::vector<int>{1});
  collective.readmitted(1);
  t.push_result(0, 1, 2, 12);  // computed under deal 2 before the re-deal: stale, dropped
  t.push_result(0, 1, 3, 6);
  t.push_result(1, 1, 3, 6);
  auto& results = collective.gather_step(1, 1, nullptr);
  CHECK(results[0].step().deal_id() == 3);
  CHECK(results[1].step().deal_id() == 3);
  const auto deals = t.deals();
  REQUIRE(deals.size() == 2 + 1 + 2);
  for (size_t i = 3; i < 5; ++i) {
    const threadsplit::EpochDeal& d = deals[i].second.deal();
    CHECK(deals[i].first == int(i) - 3);
    CHECK(d.deal_id() == 3);
    CHECK(d.first_step() == 1);
    REQUIRE(d.steps_size() == plan.steps() - 1);
    CHECK(d.steps(0).indices_size() == 6);
    CHECK(d.steps(0).global_batch() == 12);
  }
}

TEST_CASE("respawner: the event queue drops one rank's events and keeps its step gate's counts",
          "[respawn]") {
  Transport t;
  t.push_result(1, 0, 1, 6);
  t.push_result(0, 0, 1, 6);
  WorkerEvent closed;
  closed.rank = 1;
  closed.closed = true;
  t.events().push(std::move(closed));
  CHECK(t.events().drop_rank(1) == 2);
  CHECK(t.events().drop_rank(1) == 0);
  // One step result is left: a gate of 2 holds it back until the timeout, a gate of 1 not.
  t.events().set_step_gate(1);
  auto e = t.events().pop(0);
  REQUIRE(e);
  CHECK(e->rank == 0);
  CHECK_FALSE(t.events().pop(0));
}

TEST_CASE("respawner: --respawn needs --on-worker-failure continue and spawned workers", "[respawn][options]") {
  CHECK_THAT(refusal({"--respawn", "1", "--data", "/d"}),
             Catch::Contains("--respawn 1 needs --on-worker-failure continue"));
  CHECK_THAT(refusal({"--respawn", "1", "--on-worker-failure", "continue", "--external-workers", "2", "--data", "/d"}),
             Catch::Contains("--respawn replaces workers this coordinator spawned"));
  CHECK_THAT(refusal({"--respawn", "-1", "--on-worker-failure", "continue", "--data", "/d"}),
             Catch::Contains("--respawn"));
  CHECK(refusal({"--respawn", "2", "--on-worker-failure", "continue", "--data", "/d"}) == "(accepted)");
  CHECK(refusal({"--respawn", "0", "--data", "/d"}) == "(accepted)");
}

TEST_CASE("respawner: the readmitted process is held to its own deals: a result under a deal only "
          "the process it replaced had is a protocol violation",
          "[respawn]") {
  Transport t;
  Membership members(2, "continue", 1.0, t);
  StepDeadline deadline(5, 5, 5);
  Collective collective(members, t, kRun, deadline, 0.5);
  const EpochPlan plan = plan_epoch(1, 0, 0, 48, false, 12);
  Script script;
  Respawner respawner(1, members, t.events(), script.hooks());
  collective.deal_epoch(plan, 0, 0, plan.steps(), 0);  // deal 1, to both
  members.lose(1, "was killed by signal 9 (Killed) during step 0");
  REQUIRE(respawner.bring_back(0) == std::vector<int>{1});
  collective.readmitted(1);
  // Deal 2 goes to both; "rank 1" answers under deal 1, which only the old process had.
  t.push_result(1, 0, 1, 6);
  t.push_result(0, 0, 3, 12);  // rank 0 alone, under deal 3, once rank 1 is lost again
  collective.gather_step(0, 0, nullptr);
  CHECK_FALSE(members.alive(1));
  REQUIRE(members.lost_workers().size() == 2);
  CHECK_THAT(members.lost_workers()[1], Catch::Contains("a result for deal 1 (step 0), a deal it was never "
                                                        "dealt (its deals: 2)"));
}
