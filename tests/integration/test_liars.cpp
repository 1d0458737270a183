// Workers that lie and runs that diverge, with real processes: a real worker (rank 0) and
// tests/tools/rogue_worker.cpp (rank 1), which takes part honestly until step 2 and then
// lies. A worker sending results of a deal it never had is lost at once (abort and
// continue); a finite but huge gradient ends as diverged (Adam: v overflows) or, with
// --max-grad-norm, refused as an outlier; a NaN loss is the run's divergence (exit 4, report
// status "diverged", the last good state saved); a checkpoint holding a NaN is skipped on
// --resume like a damaged one. docs/reliability.md, "Workers that lie and runs that diverge".
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint.h"
#include "checkpoint_store.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"

namespace fs = std::filesystem;

namespace {

using ts_test::fresh_dir;

const ts::NetworkSpec& net() {
  static const ts::NetworkSpec n = ts::build_network("seed_cnn");
  return n;
}

// Every checkpoint in `dir` loads: load_checkpoint refuses a non-finite value, so this is
// also "every saved file is finite".
void check_every_file_loads(const std::string& dir) {
  ts::CheckpointStore store(dir, 100);
  REQUIRE_FALSE(store.list().empty());
  for (const std::string& f : store.list()) {
    INFO(f);
    CHECK_NOTHROW(ts::load_checkpoint(f, net()));
  }
}

// A run of --external-workers 2: a real worker joins first (rank 0), then the rogue in
// `mode` (rank 1). `extra`: more coordinator flags.
struct LiarRun {
  LiarRun(const std::string& name, const std::string& mode, const std::vector<std::string>& extra)
      : dir(fresh_dir(name)) {
    const std::string port_file = dir + "/port";
    const std::string token = "liar-token-" + name;
    std::vector<std::string> flags = {"--external-workers", "2", "--eval-every", "0", "--port-file", port_file,
                                      "--checkpoint-dir", dir + "/ckpt", "--checkpoint-every", "1",
                                      "--report", dir + "/report.json", "--failure-grace", "2"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    coord = ts_test::start(name + "_coord", ts_test::coordinator_args(flags), {"THREADSPLIT_TOKEN=" + token});
    REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
    const std::string addr = "127.0.0.1:" + std::to_string(std::stoi(ts_test::read_text(port_file)));
    good = ts_test::start(name + "_good", {THREADSPLIT_WORKER_BIN, "--coordinator", addr},
                          {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1", "THREADSPLIT_RANK=0"});
    rogue = ts_test::start(name + "_rogue", {ROGUE_WORKER_BIN, addr, mode, "2"},
                          {"THREADSPLIT_TOKEN=" + token, "THREADSPLIT_RANK=1"});
    started = std::chrono::steady_clock::now();
  }
  // Waits for the coordinator; returns its exit status.
  int finish() {
    const int rc = ts_test::wait_exit(coord, 120);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    good_rc = ts_test::wait_exit(good, 30);
    ts_test::wait_exit(rogue, 30);
    return rc;
  }
  std::string all() const {
    return coord.out() + coord.err() + "\nrogue: " + rogue.out() + rogue.err() + "\ngood: " + good.err();
  }
  ts::JsonNode report() const { return ts::read_json_file(dir + "/report.json"); }

  std::string dir;
  ts_test::Process coord, good, rogue;
  std::chrono::steady_clock::time_point started;
  double seconds = 0;
  int good_rc = -1;
};

}  // namespace

TEST_CASE("a worker sending results of a deal it never had is lost at once under abort", "[integration][liars]") {
  LiarRun run("liar_stale_abort", "stale-deal", {"--steps", "40", "--on-worker-failure", "abort"});
  const int rc = run.finish();
  INFO(run.all());
  CHECK(rc == 1);
  CHECK_THAT(run.rogue.out(), Catch::Contains("joined as rank 1") && Catch::Contains("lying from step 2"));
  CHECK_THAT(run.coord.err(), Catch::Contains("run aborted: worker 1 (pid " + std::to_string(run.rogue.pid)) &&
                                  Catch::Contains("a result for deal 0 (step 2), a deal it was never dealt") &&
                                  Catch::Contains("protocol violation during step 2"));
  // Lost during the step it started lying at, not after a deadline: the abort checkpoint
  // is of step 2. (The first step's deadline is 60 s; the whole run took far less.)
  CHECK(run.seconds < 50);
  ts::CheckpointStore store(run.dir + "/ckpt", 3);
  REQUIRE_FALSE(store.list().empty());
  CHECK(ts::load_checkpoint(store.list()[0], net()).step == 2);
  CHECK(run.report()["status"].str() == "failed");
}

TEST_CASE("a worker sending results of a deal it never had is lost under continue and the honest worker is kept", "[integration][liars]") {
  LiarRun run("liar_stale_continue", "stale-deal", {"--steps", "30", "--on-worker-failure", "continue"});
  const int rc = run.finish();
  INFO(run.all());
  CHECK(rc == 0);
  CHECK_THAT(run.coord.err(), Catch::Contains("WORKER LOST: worker 1 (pid " + std::to_string(run.rogue.pid)) &&
                                  Catch::Contains("a deal it was never dealt") &&
                                  Catch::Contains("continuing with 1 of 2 workers"));
  CHECK_THAT(run.coord.err(), !Catch::Contains("WORKER LOST: worker 0"));
  CHECK_THAT(run.coord.out(), Catch::Contains("trained 30 steps"));
  CHECK(run.seconds < 50);
  CHECK(run.good_rc == 0);
  check_every_file_loads(run.dir + "/ckpt");
}

TEST_CASE("a finite gradient of 1e20 under Adam ends as diverged with the last good state, every file finite", "[integration][liars]") {
  // Adam's v grows by 0.001 * g^2 = 1e37 a step and overflows some 35 steps in.
  LiarRun run("liar_huge_adam", "huge-gradient", {"--steps", "100", "--optimizer", "adam"});
  const int rc = run.finish();
  INFO(run.all());
  CHECK(rc == 4);
  CHECK_THAT(run.coord.err(), Catch::Contains("the run diverged at step ") &&
                                  Catch::Contains("the optimizer state 'v': inf at") &&
                                  Catch::Contains("the last good state"));
  const ts::JsonNode r = run.report();
  CHECK(r["status"].str() == "diverged");
  CHECK_THAT(r["error"].str(), Catch::StartsWith("the run diverged at step "));
  check_every_file_loads(run.dir + "/ckpt");
  // The final checkpoint is of the step before the one that diverged.
  ts::CheckpointStore store(run.dir + "/ckpt", 3);
  const int64_t last = ts::load_checkpoint(store.list()[0], net()).step;
  CHECK_THAT(run.coord.err(), Catch::Contains("the run diverged at step " + std::to_string(last) + " "));
  CHECK(last > 2);
}

TEST_CASE("a finite gradient of 1e20 under SGD is refused by --max-grad-norm as an outlier", "[integration][liars]") {
  LiarRun run("liar_huge_sgd", "huge-gradient",
              {"--steps", "30", "--optimizer", "sgd", "--max-grad-norm", "100", "--on-worker-failure", "abort"});
  const int rc = run.finish();
  INFO(run.all());
  CHECK(rc == 1);  // the worker's fault, not divergence
  CHECK_THAT(run.coord.err(), Catch::Contains("run aborted: worker 1 (pid " + std::to_string(run.rogue.pid)) &&
                                  Catch::Contains("a gradient of L2 norm 1e+20 for step 2, above --max-grad-norm 100"));
  CHECK(run.report()["status"].str() == "failed");
  check_every_file_loads(run.dir + "/ckpt");
  ts::CheckpointStore store(run.dir + "/ckpt", 3);
  CHECK(ts::load_checkpoint(store.list()[0], net()).step == 2);
}

TEST_CASE("a NaN loss is the run's divergence: exit 4, status diverged, the last good state saved", "[integration][liars]") {
  // Under continue too: divergence is not a worker to drop.
  LiarRun run("liar_nan_loss", "nan-loss", {"--steps", "30", "--on-worker-failure", "continue"});
  const int rc = run.finish();
  INFO(run.all());
  CHECK(rc == 4);
  CHECK_THAT(run.coord.err(), Catch::Contains("the run diverged at step 2 (a worker's loss)") &&
                                  Catch::Contains("a non-finite loss"));
  CHECK_THAT(run.coord.err(), !Catch::Contains("WORKER LOST"));
  const ts::JsonNode r = run.report();
  CHECK(r["status"].str() == "diverged");
  check_every_file_loads(run.dir + "/ckpt");
  ts::CheckpointStore store(run.dir + "/ckpt", 3);
  CHECK(ts::load_checkpoint(store.list()[0], net()).step == 2);
}

TEST_CASE("a checkpoint holding a NaN written by hand is refused and --resume takes the one before it", "[integration][liars]") {
  const std::string dir = fresh_dir("liar_nan_ckpt");
  const std::vector<std::string> common = {"--procs", "1", "--threads", "1", "--eval-every", "0", "--checkpoint-dir",
                                           dir, "--checkpoint-every", "5"};
  std::vector<std::string> first = common;
  first.insert(first.end(), {"--steps", "10"});
  ts_test::Process a = ts_test::start("liar_nan_ckpt_first", ts_test::coordinator_args(first));
  REQUIRE(ts_test::wait_exit(a, 120) == 0);
  const std::string newest = dir + "/step-000000000010.ckpt";
  REQUIRE(fs::exists(newest));
  // A valid file (its CRC is right) whose state is poisoned.
  ts::TrainingState s = ts::load_checkpoint(newest, net());
  s.params[net().params[1].offset + 3] = std::numeric_limits<float>::quiet_NaN();
  ts::save_checkpoint(newest, net(), s);
  std::vector<std::string> again = common;
  again.insert(again.end(), {"--steps", "15", "--resume"});
  ts_test::Process b = ts_test::start("liar_nan_ckpt_resume", ts_test::coordinator_args(again));
  const int rc = ts_test::wait_exit(b, 120);
  INFO(b.out() << b.err());
  CHECK(rc == 0);
  CHECK_THAT(b.err(), Catch::Contains("skipping a damaged checkpoint: cannot load checkpoint " + newest) &&
                          Catch::Contains("parameter tensor '" + net().params[1].name +
                                          "' holds a non-finite value (nan at element 3)") &&
                          Catch::Contains("resuming from " + dir + "/step-000000000005.ckpt"));
  CHECK_NOTHROW(ts::load_checkpoint(dir + "/step-000000000015.ckpt", net()));
}
