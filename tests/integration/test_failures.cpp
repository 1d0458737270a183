// What goes wrong at the edges: bad flags and data refused before anything starts, workers
// with the wrong token or of another run refused, a hand-started worker whose coordinator
// vanishes leaving with a clear message.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "run_helpers.h"

namespace {

struct Refusal {
  std::vector<std::string> flags;
  std::string message;
};

}  // namespace

TEST_CASE("bad flags and a missing data set are refused in one sentence before anything starts",
          "[integration][flags]") {
  const std::vector<Refusal> cases = {
      {{"--cores", "0,0"}, "names core 0 twice"},
      {{"--procs", "-1"}, "--procs must be at least 1"},
      {{"--model", "resnet"}, "unknown model 'resnet'"},
      {{"--augment", "rotate"}, "--augment"},
      {{"--optimizer", "rmsprop"}, "--optimizer"},
      {{"--batch", "abc"}, "--batch expects a whole number"},
      {{"--bogus"}, "unknown argument '--bogus'"},
      {{"--save", "/nonexistent-dir/x.ckpt"}, "/nonexistent-dir"},
  };
  int i = 0;
  for (const auto& c : cases) {
    ts_test::Process p = ts_test::start("refuse_" + std::to_string(i++), ts_test::coordinator_args(c.flags));
    const int rc = ts_test::wait_exit(p, 60);
    INFO(c.flags[0] << ": " << p.err());
    CHECK(rc == 2);
    CHECK_THAT(p.err(), Catch::Contains(c.message));
    CHECK(p.out().empty());  // nothing started, nothing announced
  }
  ts_test::Process p = ts_test::start("refuse_data", {THREADSPLIT_BIN, "--data", "/nonexistent-data"});
  CHECK(ts_test::wait_exit(p, 60) == 2);
  CHECK_THAT(p.err(), Catch::Contains("/nonexistent-data"));
}

TEST_CASE("hand-started workers: a wrong token or another run is refused, the right one trains "
          "and leaves when its coordinator vanishes",
          "[integration][external]") {
  const std::string port_file = ts_test::tmp_dir() + "/external.port";
  std::filesystem::remove(port_file);
  const std::string token = "token-for-this-test-7f3a";
  ts_test::Process coord = ts_test::start(
      "external_coord",
      ts_test::coordinator_args({"--external-workers", "1", "--steps", "1000000", "--eval-every", "0",
                                 "--port-file", port_file, "--connect-timeout", "120"}),
      {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return std::filesystem::exists(port_file); }, 60));
  const std::string port = std::to_string(std::stoi(ts_test::read_text(port_file)));
  const std::vector<std::string> worker = {THREADSPLIT_WORKER_BIN, "--coordinator", "127.0.0.1:" + port};

  ts_test::Process wrong = ts_test::start("external_wrong_token", worker,
                                          {"THREADSPLIT_TOKEN=not-the-token", "OMP_NUM_THREADS=1"});
  CHECK(ts_test::wait_exit(wrong, 60) == 4);
  CHECK_THAT(wrong.err(), Catch::Contains("refused this worker: wrong run token"));

  ts_test::Process other = ts_test::start(
      "external_other_run", worker,
      {"THREADSPLIT_TOKEN=" + token, "THREADSPLIT_RUN_ID=some-other-run", "OMP_NUM_THREADS=1"});
  CHECK(ts_test::wait_exit(other, 60) == 4);
  CHECK_THAT(other.err(), Catch::Contains("belongs to run some-other-run"));
  CHECK_THAT(coord.err(), Catch::Contains("refused a worker"));

  ts_test::Process good = ts_test::start("external_good", worker,
                                         {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  const bool joined = ts_test::wait_until(
      [&] { return coord.out().find("threadsplit: worker 0 pid") != std::string::npos; }, 60);
  INFO("coordinator:\n" << coord.out() << coord.err() << "\nworker:\n" << good.err());
  REQUIRE(joined);
  kill(coord.pid, SIGKILL);
  ts_test::wait_exit(coord, 10);
  CHECK(ts_test::wait_exit(good, 60) == 3);
  CHECK_THAT(good.err(), Catch::Contains("lost the coordinator at 127.0.0.1:" + port));
}

TEST_CASE("a worker that dies mid-run aborts the run with a message naming it, and a checkpoint",
          "[integration][failure]") {
  const std::string ckpt = ts_test::tmp_dir() + "/abort.ckpt";
  std::filesystem::remove(ckpt);
  ts_test::Process coord = ts_test::start(
      "abort", ts_test::coordinator_args({"--procs", "2", "--threads", "1", "--steps", "1000000",
                                          "--eval-every", "0", "--save", ckpt}));
  std::vector<pid_t> pids;
  REQUIRE(ts_test::wait_until(
      [&] {
        pids = ts_test::worker_pids(coord.out());
        return pids.size() == 2 && pids[1] > 0;
      },
      60));
  kill(pids[1], SIGKILL);
  const int rc = ts_test::wait_exit(coord, 60);
  INFO(coord.out() << coord.err());
  CHECK(rc == 1);
  CHECK_THAT(coord.err(), Catch::Contains("run aborted: worker 1 (pid " + std::to_string(pids[1])) &&
                              Catch::Contains("killed by signal 9"));
  CHECK(std::filesystem::exists(ckpt));
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]); }, 10));
}
