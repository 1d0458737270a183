// --respawn with real processes: a worker killed (-9) at a random step is replaced on its
// cores and the run ends with every worker again and the parameters of an unbroken run (up to
// summation order); a replacement killed once the budget is spent is dropped as under
// --on-worker-failure continue; --respawn without continue is refused.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"

namespace {

using ts_test::with;
using ts_test::wait_for_workers;
using ts_test::kill_all;

// SGD with momentum, as in the continue-policy test (test_reliability.cpp).
const std::vector<std::string> kCommon = {"--seed", "5", "--optimizer", "sgd", "--lr", "0.01",
                                          "--momentum", "0.9", "--eval-every", "0",
                                          "--procs", "2", "--threads", "1", "--progress", "on"};

// The pids of "WORKER RESPAWNED: worker R (pid NEW, ...) replaces pid OLD" lines, in order.
std::vector<std::pair<pid_t, pid_t>> respawned(const std::string& err) {
  std::vector<std::pair<pid_t, pid_t>> out;
  static const std::regex line(R"(WORKER RESPAWNED: worker \d+ \(pid (\d+)[^)]*\) replaces pid (\d+))");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), line); it != std::sregex_iterator(); ++it)
    out.emplace_back(pid_t(std::stol((*it)[1])), pid_t(std::stol((*it)[2])));
  return out;
}

// The largest parameter and the largest difference between two checkpoints' parameters.
std::pair<double, double> param_gap(const std::string& a_path, const std::string& b_path, int64_t* b_step) {
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  const ts::TrainingState a = ts::load_checkpoint(a_path, net), b = ts::load_checkpoint(b_path, net);
  REQUIRE(a.params.size() == b.params.size());
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < a.params.size(); ++i) {
    max_abs = std::max(max_abs, double(std::fabs(a.params[i])));
    max_diff = std::max(max_diff, double(std::fabs(a.params[i] - b.params[i])));
  }
  *b_step = b.step;
  return {max_abs, max_diff};
}

}  // namespace

TEST_CASE("respawn: a worker killed at a random step is replaced on its cores, the run ends with "
          "every worker and the parameters of an unbroken run, the report lists it, no orphan",
          "[integration][respawn]") {
  const std::string dir = ts_test::tmp_dir();
  const std::vector<std::string> common = with(kCommon, {"--steps", "100"});
  ts_test::Process straight = ts_test::start(
      "respawn_straight", ts_test::coordinator_args(with(common, {"--save", dir + "/respawn_straight.ckpt"})));
  REQUIRE(ts_test::wait_exit(straight, 300) == 0);

  const std::string report = dir + "/respawn_broken.json";
  ts_test::Process coord = ts_test::start(
      "respawn_broken",
      ts_test::coordinator_args(with(common, {"--save", dir + "/respawn_broken.ckpt", "--report", report,
                                              "--on-worker-failure", "continue", "--respawn", "1"})));
  const std::vector<pid_t> pids = wait_for_workers(coord, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(ts_test::wait_for_random_step(coord, 10, 45));
  kill(pids[1], SIGKILL);
  const int rc = ts_test::wait_exit(coord, 300);
  INFO(coord.out() << coord.err());
  REQUIRE(rc == 0);
  // The loss line of continue, then the replacement's.
  CHECK_THAT(coord.err(), Catch::Contains("WORKER LOST: worker 1 (pid " + std::to_string(pids[1])));
  const auto re = respawned(coord.err());
  REQUIRE(re.size() == 1);
  const pid_t fresh = re[0].first;
  CHECK(re[0].second == pids[1]);
  CHECK(fresh != pids[1]);
  CHECK_THAT(coord.err(), Catch::Contains("WORKER RESPAWNED: worker 1 (pid " + std::to_string(fresh) +
                                          ", cores 1) replaces pid " + std::to_string(pids[1]) +
                                          ", which was killed by signal 9") &&
                              Catch::Contains("re-dealt steps") && Catch::Contains("among 2 workers"));

  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["totals"]["steps"].num() == 100);
  CHECK(r["lost_workers"].size() == 1);
  REQUIRE(r["respawns"].size() == 1);
  const ts::JsonNode rec = r["respawns"][0];
  CHECK(rec["rank"].num() == 1);
  CHECK(rec["old_pid"].num() == pids[1]);
  CHECK(rec["new_pid"].num() == fresh);
  CHECK(rec["step"].num() > 0);
  CHECK(rec["step"].num() < 100);
  CHECK(rec["outcome"].str() == "rejoined");
  CHECK_THAT(rec["old_exit"].str(), Catch::Contains("killed by signal 9"));
  // Both ranks were in the run at its end: the replacement said Goodbye and exited cleanly.
  REQUIRE(r["workers"].size() == 2);
  CHECK(r["workers"][1]["pid"].num() == fresh);
  CHECK(r["workers"][1]["assigned_cores"].str() == "1");
  CHECK(r["workers"][1]["exit"].str() == "exited with status 0");
  CHECK(r["workers"][0]["exit"].str() == "exited with status 0");

  int64_t step = 0;
  const auto [max_abs, max_diff] =
      param_gap(dir + "/respawn_straight.ckpt", dir + "/respawn_broken.ckpt", &step);
  INFO("max |p| " << max_abs << ", max |p(straight) - p(killed and respawned)| " << max_diff);
  CHECK(step == 100);
  CHECK(max_diff < 1e-4 * max_abs);
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]) && ts_test::process_gone(fresh); }, 10));
  kill_all({pids[0], pids[1], fresh});
}

TEST_CASE("respawn: a replacement killed again once --respawn is spent is dropped as under "
          "continue, and the run still ends with the unbroken run's parameters",
          "[integration][respawn]") {
  const std::string dir = ts_test::tmp_dir();
  // 80 steps, as in the continue test: the longer one worker carries the steps alone, the
  // further float summation order drifts (about 1e-4 of the largest parameter after 95).
  const std::vector<std::string> common = with(kCommon, {"--steps", "80"});
  ts_test::Process straight = ts_test::start(
      "respawn_twice_straight",
      ts_test::coordinator_args(with(common, {"--save", dir + "/respawn_twice_straight.ckpt"})));
  REQUIRE(ts_test::wait_exit(straight, 300) == 0);

  const std::string report = dir + "/respawn_twice.json";
  ts_test::Process coord = ts_test::start(
      "respawn_twice",
      ts_test::coordinator_args(with(common, {"--save", dir + "/respawn_twice.ckpt", "--report", report,
                                              "--on-worker-failure", "continue", "--respawn", "1"})));
  const std::vector<pid_t> pids = wait_for_workers(coord, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(ts_test::wait_for_random_step(coord, 8, 25));
  kill(pids[1], SIGKILL);
  std::vector<std::pair<pid_t, pid_t>> re;
  ts_test::wait_until([&] { return !(re = respawned(coord.err())).empty(); }, 90);
  REQUIRE(re.size() == 1);
  const pid_t fresh = re[0].first;
  const int now = ts_test::steps_done(coord.out());
  REQUIRE(ts_test::wait_for_random_step(coord, now + 3, now + 10));
  kill(fresh, SIGKILL);
  const int rc = ts_test::wait_exit(coord, 300);
  INFO(coord.out() << coord.err());
  REQUIRE(rc == 0);
  CHECK_THAT(coord.err(), Catch::Contains("WORKER LOST: worker 1 (pid " + std::to_string(fresh)) &&
                              Catch::Contains("worker 1 is not replaced: --respawn 1 is spent"));
  CHECK(respawned(coord.err()).size() == 1);
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["totals"]["steps"].num() == 80);
  CHECK(r["lost_workers"].size() == 2);
  CHECK(r["respawns"].size() == 1);
  int64_t step = 0;
  const auto [max_abs, max_diff] =
      param_gap(dir + "/respawn_twice_straight.ckpt", dir + "/respawn_twice.ckpt", &step);
  INFO("max |p| " << max_abs << ", max |p(straight) - p(killed twice)| " << max_diff);
  CHECK(step == 80);
  CHECK(max_diff < 1e-4 * max_abs);
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]); }, 10));
  CHECK(ts_test::process_gone(fresh));
  kill_all({pids[0], pids[1], fresh});
}

TEST_CASE("respawn: --respawn without --on-worker-failure continue, or with --external-workers, is "
          "refused before anything starts",
          "[integration][respawn]") {
  ts_test::Process abort_policy =
      ts_test::start("respawn_abort_policy", ts_test::coordinator_args({"--respawn", "1", "--steps", "1"}));
  CHECK(ts_test::wait_exit(abort_policy, 30) == 2);
  CHECK_THAT(abort_policy.err(), Catch::Contains("--respawn 1 needs --on-worker-failure continue"));
  CHECK(ts_test::worker_pids(abort_policy.out()).empty());

  ts_test::Process external = ts_test::start(
      "respawn_external", ts_test::coordinator_args({"--respawn", "2", "--on-worker-failure", "continue",
                                                     "--external-workers", "2", "--steps", "1"}));
  CHECK(ts_test::wait_exit(external, 30) == 2);
  CHECK_THAT(external.err(), Catch::Contains("--respawn replaces workers this coordinator spawned") &&
                                 Catch::Contains("--external-workers"));
}

namespace {

// A --worker-bin that runs the real worker for the first two starts and, for any later one
// (the replacement), does what RESPAWN_TEST_LATER says: "exit" (status 7 before any Hello) or
// "hang" (never connects). mkdir is atomic, so the two first starts cannot both miss.
std::string flaky_worker_bin(const std::string& name) {
  const std::string dir = ts_test::tmp_dir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/worker.sh";
  std::ofstream f(path);
  f << "#!/bin/sh\n"
    << "if mkdir '" << dir << "/first' 2>/dev/null || mkdir '" << dir << "/second' 2>/dev/null; then\n"
    << "  exec '" << THREADSPLIT_WORKER_BIN << "' \"$@\"\n"
    << "fi\n"
    << "[ \"$RESPAWN_TEST_LATER\" = hang ] && exec sleep 600\n"
    << "exit 7\n";
  f.close();
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

// The coordinator's arguments with `bin` as the worker binary.
std::vector<std::string> args_with_worker(const std::vector<std::string>& extra, const std::string& bin) {
  std::vector<std::string> a = ts_test::coordinator_args(extra);
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == "--worker-bin") a[i + 1] = bin;
  return a;
}

}  // namespace

TEST_CASE("respawn: a replacement that exits before joining, or never joins within "
          "--connect-timeout, is reported and stopped, and the run goes on without it",
          "[integration][respawn]") {
  const bool hang = GENERATE(false, true);
  const std::string name = hang ? "respawn_hang" : "respawn_exit";
  const std::string report = ts_test::tmp_dir() + "/" + name + ".json";
  ts_test::Process coord = ts_test::start(
      name,
      args_with_worker(with(kCommon, {"--steps", "80", "--on-worker-failure", "continue", "--respawn", "1",
                                      "--connect-timeout", "5", "--report", report}),
                       flaky_worker_bin(name)),
      {std::string("RESPAWN_TEST_LATER=") + (hang ? "hang" : "exit")});
  const std::vector<pid_t> pids = wait_for_workers(coord, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(ts_test::wait_for_random_step(coord, 8, 30));
  kill(pids[1], SIGKILL);
  const int rc = ts_test::wait_exit(coord, 300);
  INFO(coord.out() << coord.err());
  REQUIRE(rc == 0);
  CHECK_THAT(coord.out(), Catch::Contains("trained 80 steps"));
  CHECK_THAT(coord.err(), Catch::Contains("RESPAWN FAILED: worker 1 (pid " + std::to_string(pids[1]) +
                                          ") not replaced: the replacement (pid "));
  CHECK(respawned(coord.err()).empty());
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["lost_workers"].size() == 1);
  REQUIRE(r["respawns"].size() == 1);
  CHECK(r["respawns"][0]["new_pid"].num() == 0);
  const std::string outcome = r["respawns"][0]["outcome"].str();
  CHECK_THAT(outcome, Catch::Contains(hang ? "did not join within 5 s (--connect-timeout)"
                                           : "exited with status 7 before joining"));
  // The replacement that hung was killed: its pid is in the outcome.
  const std::smatch m = [&] {
    std::smatch x;
    std::regex_search(outcome, x, std::regex(R"(\(pid (\d+)\))"));
    return x;
  }();
  REQUIRE(m.size() == 2);
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pid_t(std::stol(m[1]))); }, 10));
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]); }, 10));
  kill_all({pids[0], pids[1]});
}

TEST_CASE("respawn: a stopped worker (SIGSTOP) is lost after the grace, killed, and replaced on "
          "its cores, and the run ends with every worker",
          "[integration][respawn]") {
  const std::string report = ts_test::tmp_dir() + "/respawn_sigstop.json";
  ts_test::Process coord = ts_test::start(
      "respawn_sigstop",
      ts_test::coordinator_args(with(kCommon, {"--steps", "150", "--on-worker-failure", "continue",
                                               "--respawn", "1", "--failure-grace", "2", "--report", report})));
  const std::vector<pid_t> pids = wait_for_workers(coord, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(ts_test::wait_for_random_step(coord, 10, 60));
  kill(pids[0], SIGSTOP);
  const int rc = ts_test::wait_exit(coord, 300);
  INFO(coord.out() << coord.err());
  REQUIRE(rc == 0);
  CHECK_THAT(coord.err(), Catch::Contains("WORKER LOST: worker 0 (pid " + std::to_string(pids[0])) &&
                              Catch::Contains("was stopped"));
  const auto re = respawned(coord.err());
  REQUIRE(re.size() == 1);
  CHECK(re[0].second == pids[0]);
  CHECK_THAT(coord.err(), Catch::Contains("WORKER RESPAWNED: worker 0 (pid " + std::to_string(re[0].first) +
                                          ", cores 0) replaces pid " + std::to_string(pids[0]) +
                                          ", which was killed by signal 9"));
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["totals"]["steps"].num() == 150);
  REQUIRE(r["workers"].size() == 2);
  CHECK(r["workers"][0]["pid"].num() == re[0].first);
  CHECK(r["workers"][0]["exit"].str() == "exited with status 0");
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]) && ts_test::process_gone(pids[1]) &&
                                         ts_test::process_gone(re[0].first); }, 10));
  kill(pids[0], SIGCONT);
  kill_all({pids[0], pids[1], re[0].first});
}
