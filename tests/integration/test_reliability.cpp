// Failures with real processes: a worker killed (-9) or stopped (SIGSTOP) at a random step
// under both --on-worker-failure policies, a coordinator killed and resumed from its
// checkpoint directory, a damaged checkpoint skipped, foreign and malformed clients refused
// while the run goes on, a non-finite gradient stopping the run, TLS, a port in use and an
// unreachable coordinator. Each run is a few dozen steps: seconds, not minutes.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "checkpoint.h"
#include "checkpoint_store.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"
#include "skip.h"

namespace fs = std::filesystem;

namespace {

using ts_test::fresh_dir;
using ts_test::with;
using ts_test::wait_for_workers;
using ts_test::random_pause;
using ts_test::kill_all;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

ts::TrainingState load(const std::string& path) {
  return ts::load_checkpoint(path, ts::build_network("seed_cnn"));
}

// SGD with momentum (see test_training.cpp on why not Adam for split comparisons).
const std::vector<std::string> kSgd = {"--seed", "5", "--optimizer", "sgd", "--lr", "0.01",
                                       "--momentum", "0.9", "--eval-every", "0"};

}  // namespace

TEST_CASE("abort policy: a worker killed at a random step ends the run within seconds, naming "
          "worker, pid, cores and step, with a checkpoint and no orphan",
          "[integration][reliability]") {
  const std::string dir = fresh_dir("abort_kill");
  ts_test::Process coord = ts_test::start(
      "abort_kill", ts_test::coordinator_args({"--procs", "2", "--threads", "1", "--steps", "100000",
                                               "--eval-every", "0", "--checkpoint-dir", dir,
                                               "--on-worker-failure", "abort",
                                               "--report", dir + "/report.json"}));
  const std::vector<pid_t> pids = wait_for_workers(coord, 2);
  REQUIRE(pids.size() == 2);
  random_pause(0.2, 1.0);
  kill(pids[1], SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  const int rc = ts_test::wait_exit(coord, 30);
  INFO(coord.out() << coord.err());
  CHECK(seconds_since(killed) < 10);
  CHECK(rc == 1);
  CHECK_THAT(coord.err(), Catch::Contains("run aborted: worker 1 (pid " + std::to_string(pids[1]) + ", cores ") &&
                              Catch::Contains("during step "));
  ts::CheckpointStore store(dir, 3);
  REQUIRE(!store.list().empty());
  CHECK_NOTHROW(load(store.list()[0]));
  // The report keeps the steps of the epoch the failure cut short, marked as such.
  const ts::JsonNode r = ts::read_json_file(dir + "/report.json");
  CHECK(r["status"].str() == "failed");
  REQUIRE(r["epochs"].size() >= 1);
  const ts::JsonNode last = r["epochs"][r["epochs"].size() - 1];
  CHECK(last["aborted"].boolean());
  CHECK(last["steps"].num() == r["totals"]["steps"].num());
  CHECK(last["steps"].num() > 0);
  CHECK(last["steps"].num() < last["planned_steps"].num());
  CHECK(last["train_loss"].num() > 0);
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]); }, 10));
  kill_all(pids);
}

TEST_CASE("continue policy: a worker killed at a random step is re-dealt around, and the run ends "
          "with the parameters of an unbroken run up to summation order",
          "[integration][reliability]") {
  const std::string dir = ts_test::tmp_dir();
  const std::vector<std::string> common =
      with(kSgd, {"--procs", "2", "--threads", "1", "--steps", "80", "--progress", "on"});
  ts_test::Process straight = ts_test::start(
      "continue_straight", ts_test::coordinator_args(with(common, {"--save", dir + "/continue_straight.ckpt"})));
  REQUIRE(ts_test::wait_exit(straight, 300) == 0);

  const std::string report = dir + "/continue_broken.json";
  ts_test::Process coord = ts_test::start(
      "continue_broken",
      ts_test::coordinator_args(with(common, {"--save", dir + "/continue_broken.ckpt", "--report", report,
                                              "--on-worker-failure", "continue"})));
  const std::vector<pid_t> pids = wait_for_workers(coord, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(ts_test::wait_for_random_step(coord, 10, 40));
  kill(pids[1], SIGKILL);
  const int rc = ts_test::wait_exit(coord, 300);
  INFO(coord.out() << coord.err());
  REQUIRE(rc == 0);
  CHECK_THAT(coord.err(), Catch::Contains("WORKER LOST: worker 1 (pid " + std::to_string(pids[1])) &&
                              Catch::Contains("re-dealt steps") && Catch::Contains("math is unchanged"));
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["totals"]["steps"].num() == 80);
  REQUIRE(r["lost_workers"].size() == 1);
  CHECK_THAT(r["lost_workers"][0].str(), Catch::StartsWith("worker 1 (pid " + std::to_string(pids[1])));
  const ts::TrainingState a = load(dir + "/continue_straight.ckpt"), b = load(dir + "/continue_broken.ckpt");
  REQUIRE(a.params.size() == b.params.size());
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < a.params.size(); ++i) {
    max_abs = std::max(max_abs, double(std::fabs(a.params[i])));
    max_diff = std::max(max_diff, double(std::fabs(a.params[i] - b.params[i])));
  }
  INFO("max |p| " << max_abs << ", max |p(straight) - p(one worker lost)| " << max_diff);
  CHECK(b.step == 80);
  CHECK(max_diff < 1e-4 * max_abs);
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]); }, 10));
}

TEST_CASE("a stopped worker (SIGSTOP) is noticed within the grace period, killed, and the run goes on",
          "[integration][reliability]") {
  ts_test::Process coord = ts_test::start(
      "sigstop", ts_test::coordinator_args({"--procs", "2", "--threads", "1", "--steps", "150",
                                            "--eval-every", "0", "--on-worker-failure", "continue",
                                            "--failure-grace", "2", "--progress", "on"}));
  const std::vector<pid_t> pids = wait_for_workers(coord, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(ts_test::wait_for_random_step(coord, 10, 60));
  kill(pids[0], SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  const bool noticed = ts_test::wait_until(
      [&] { return coord.err().find("WORKER LOST") != std::string::npos; }, 20);
  const double took = seconds_since(stopped);
  const int rc = ts_test::wait_exit(coord, 120);
  INFO(coord.out() << coord.err() << "\nnoticed after " << took << " s");
  CHECK(noticed);
  CHECK(took < 2 + 2);  // the grace, plus polling and a step
  CHECK(rc == 0);
  CHECK_THAT(coord.err(), Catch::Contains("worker 0 (pid " + std::to_string(pids[0])) &&
                              Catch::Contains("was stopped"));
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]); }, 10));
  kill_all(pids);
}

TEST_CASE("a coordinator killed at a random step and resumed from its checkpoint directory ends "
          "bit-equal to an unbroken run, and leaves no orphan",
          "[integration][reliability]") {
  const std::string dir = fresh_dir("resume_dir");
  const std::vector<std::string> common = {"--procs", "2", "--threads", "1", "--seed", "9",
                                           "--eval-every", "0", "--steps", "160", "--progress", "on"};
  // The kill below waits for the first checkpoint and then for a random step well before the
  // end (read off the progress bar): a pause in seconds sometimes let the run finish first
  // (exit 0, not 137).
  ts_test::Process straight = ts_test::start(
      "resume_dir_straight",
      ts_test::coordinator_args(with(common, {"--save", ts_test::tmp_dir() + "/resume_dir_straight.ckpt"})));
  REQUIRE(ts_test::wait_exit(straight, 300) == 0);

  const std::vector<std::string> flags =
      with(common, {"--checkpoint-dir", dir, "--checkpoint-every", "4", "--checkpoint-keep", "2"});
  ts_test::Process first = ts_test::start("resume_dir_first", ts_test::coordinator_args(flags));
  const std::vector<pid_t> pids = wait_for_workers(first, 2);
  REQUIRE(pids.size() == 2);
  ts::CheckpointStore store(dir, 2);
  REQUIRE(ts_test::wait_until([&] { return !store.list().empty(); }, 60));
  REQUIRE(ts_test::wait_for_random_step(first, 8, 60));
  kill(first.pid, SIGKILL);
  CHECK(ts_test::wait_exit(first, 10) == 128 + SIGKILL);
  CHECK(ts_test::wait_until([&] { return ts_test::process_gone(pids[0]) && ts_test::process_gone(pids[1]); }, 10));
  kill_all(pids);
  REQUIRE(!store.list().empty());
  const int64_t interrupted_at = load(store.list()[0]).step;
  INFO("interrupted after step " << interrupted_at);
  // Rotated: the store writes the new file, then deletes beyond --checkpoint-keep 2, so a
  // SIGKILL between the two leaves keep + 1 files, never more; every one of them loads.
  CHECK(store.list().size() <= 3);
  for (const std::string& path : store.list()) CHECK_NOTHROW(load(path));

  ts_test::Process second = ts_test::start("resume_dir_second", ts_test::coordinator_args(with(flags, {"--resume"})));
  const int rc = ts_test::wait_exit(second, 300);
  INFO(second.out() << second.err());
  REQUIRE(rc == 0);
  CHECK_THAT(second.err(), Catch::Contains("resuming from " + dir));
  const ts::TrainingState resumed = load(store.list()[0]);
  const ts::TrainingState unbroken = load(ts_test::tmp_dir() + "/resume_dir_straight.ckpt");
  CHECK(resumed.step == 160);
  CHECK(resumed.params == unbroken.params);  // same P and T: bit for bit
  REQUIRE(resumed.optimizer);
  CHECK(resumed.optimizer->iterations == 160);
}

TEST_CASE("a damaged newest checkpoint is named and skipped, and resume takes the one before it",
          "[integration][reliability]") {
  const std::string dir = fresh_dir("damaged");
  const std::vector<std::string> flags = {"--procs", "1", "--threads", "1", "--seed", "3",
                                          "--eval-every", "0", "--checkpoint-dir", dir,
                                          "--checkpoint-every", "5"};
  ts_test::Process first = ts_test::start("damaged_first", ts_test::coordinator_args(with(flags, {"--steps", "15"})));
  REQUIRE(ts_test::wait_exit(first, 300) == 0);
  ts::CheckpointStore store(dir, 3);
  REQUIRE(store.list().size() == 3);
  const std::string newest = store.list()[0];
  CHECK_THAT(newest, Catch::EndsWith("step-000000000015.ckpt"));
  {
    std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(fs::file_size(newest) / 2));
    f.put('\x5a');
  }
  ts_test::Process second = ts_test::start("damaged_second", ts_test::coordinator_args(with(flags, {"--steps", "20", "--resume"})));
  const int rc = ts_test::wait_exit(second, 300);
  INFO(second.out() << second.err());
  REQUIRE(rc == 0);
  CHECK_THAT(second.err(), Catch::Contains("skipping a damaged checkpoint") &&
                               Catch::Contains("step-000000000015.ckpt") &&
                               Catch::Contains("resuming from " + dir + "/step-000000000010.ckpt"));
  CHECK(load(store.list()[0]).step == 20);
}

TEST_CASE("foreign clients and malformed messages are refused with a gRPC status and logged while "
          "the run goes on",
          "[integration][reliability]") {
  const std::string port_file = ts_test::tmp_dir() + "/rogue.port";
  fs::remove(port_file);
  const std::string token = "rogue-test-token-1234";
  ts_test::Process coord = ts_test::start(
      "rogue_coord",
      ts_test::coordinator_args({"--external-workers", "2", "--steps", "30", "--eval-every", "0",
                                 "--port-file", port_file, "--on-worker-failure", "continue"}),
      {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  const std::string addr = "127.0.0.1:" + std::to_string(std::stoi(ts_test::read_text(port_file)));
  struct Door {
    std::string mode, status, text;
  };
  // INVALID_ARGUMENT is 3, PERMISSION_DENIED 7.
  for (const Door& d : {Door{"no-hello", "status 3", "the first message must be Hello"},
                        Door{"bad-token", "status 7", "wrong run token"},
                        Door{"old-protocol", "status 7", "protocol version"},
                        Door{"other-build", "status 7", "built from other sources"},
                        Door{"bad-rank", "status 7", "rank 999 is outside"}}) {
    ts_test::Process rogue = ts_test::start("rogue_" + d.mode, {ROGUE_WORKER_BIN, addr, d.mode},
                                            {"THREADSPLIT_TOKEN=" + token});
    INFO(d.mode << ": " << rogue.out() << rogue.err());
    CHECK(ts_test::wait_exit(rogue, 60) == 0);
    CHECK_THAT(rogue.out(), Catch::Contains(d.status) && Catch::Contains(d.text));
  }
  ts_test::Process good = ts_test::start("rogue_good_worker", {THREADSPLIT_WORKER_BIN, "--coordinator", addr},
                                         {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  REQUIRE(ts_test::wait_until([&] { return coord.out().find("worker 0 pid") != std::string::npos ||
                                           coord.err().find("refused a worker") != std::string::npos; }, 60));
  ts_test::Process bad = ts_test::start("rogue_bad_length", {ROGUE_WORKER_BIN, addr, "bad-length"},
                                        {"THREADSPLIT_TOKEN=" + token});
  const int rc = ts_test::wait_exit(coord, 120);
  INFO(coord.out() << coord.err() << "\nrogue: " << bad.out());
  CHECK(rc == 0);
  CHECK(ts_test::wait_exit(bad, 30) == 0);
  CHECK_THAT(bad.out(), Catch::Contains("joined as rank") && Catch::Contains("status 3: refused: a gradient of"));
  CHECK_THAT(coord.err(), Catch::Contains("refused a message from worker") && Catch::Contains("WORKER LOST") &&
                              Catch::Contains("refused a worker") && Catch::Contains("wrong run token") &&
                              Catch::Contains("its first message was not a Hello"));
  CHECK_THAT(coord.out(), Catch::Contains("trained 30 steps"));
  CHECK(ts_test::wait_exit(good, 30) == 0);
}

TEST_CASE("a non-finite gradient stops the run with a clear message and a checkpoint",
          "[integration][reliability]") {
  const std::string port_file = ts_test::tmp_dir() + "/nan.port";
  const std::string dir = fresh_dir("nan_ckpt");
  fs::remove(port_file);
  const std::string token = "nan-test-token-5678";
  ts_test::Process coord = ts_test::start(
      "nan_coord",
      ts_test::coordinator_args({"--external-workers", "1", "--steps", "30", "--eval-every", "0",
                                 "--port-file", port_file, "--checkpoint-dir", dir,
                                 "--on-worker-failure", "continue"}),
      {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  const std::string addr = "127.0.0.1:" + std::to_string(std::stoi(ts_test::read_text(port_file)));
  ts_test::Process rogue = ts_test::start("nan_rogue", {ROGUE_WORKER_BIN, addr, "nan-gradient"},
                                          {"THREADSPLIT_TOKEN=" + token});
  const int rc = ts_test::wait_exit(coord, 60);
  INFO(coord.out() << coord.err() << "\nrogue: " << rogue.out());
  CHECK(rc == 4);  // the run diverged: not 1, a worker's fault (docs/reliability.md)
  CHECK_THAT(coord.err(), Catch::Contains("non-finite gradient") &&
                              Catch::Contains("stopped before the parameters were touched"));
  ts::CheckpointStore store(dir, 3);
  REQUIRE(store.list().size() == 1);
  CHECK(load(store.list()[0]).step == 0);
  ts_test::wait_exit(rogue, 30);
}

TEST_CASE("a port in use and an unreachable coordinator get one sentence and a non-zero exit",
          "[integration][reliability]") {
  const std::string port_file = ts_test::tmp_dir() + "/inuse.port";
  fs::remove(port_file);
  ts_test::Process holder = ts_test::start(
      "inuse_holder",
      ts_test::coordinator_args({"--external-workers", "1", "--port-file", port_file, "--connect-timeout", "30"}),
      {"THREADSPLIT_TOKEN=holder"});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  const std::string port = std::to_string(std::stoi(ts_test::read_text(port_file)));
  std::vector<std::string> args = ts_test::coordinator_args({"--procs", "1", "--steps", "1"});
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--port") args[i + 1] = port;
  ts_test::Process second = ts_test::start("inuse_second", args);
  CHECK(ts_test::wait_exit(second, 30) == 2);
  CHECK_THAT(second.err(), Catch::Contains("cannot listen on 127.0.0.1:" + port) && Catch::Contains("port in use"));
  kill(holder.pid, SIGKILL);
  ts_test::wait_exit(holder, 10);

  ts_test::Process lonely = ts_test::start(
      "unreachable", {THREADSPLIT_WORKER_BIN, "--coordinator", "127.0.0.1:" + port, "--connect-timeout", "1"},
      {"THREADSPLIT_TOKEN=x", "OMP_NUM_THREADS=1"});
  CHECK(ts_test::wait_exit(lonely, 30) == 3);
  CHECK_THAT(lonely.err(), Catch::Contains("cannot reach a coordinator at 127.0.0.1:" + port));
}

TEST_CASE("TLS: spawned workers train over TLS, and a plain worker cannot join",
          "[integration][reliability]") {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    ts_test::skip_test("openssl is not installed, so no test certificate can be made");
    return;
  }
  const std::string dir = fresh_dir("tls");
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " + dir + "/key.pem -out " + dir +
      "/cert.pem >" + dir + "/openssl.log 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string port_file = dir + "/port";
  ts_test::Process coord = ts_test::start(
      "tls_coord", ts_test::coordinator_args({"--procs", "1", "--threads", "1", "--steps", "3",
                                              "--eval-every", "0", "--tls-cert", dir + "/cert.pem",
                                              "--tls-key", dir + "/key.pem", "--port-file", port_file}));
  const int rc = ts_test::wait_exit(coord, 120);
  INFO(coord.out() << coord.err());
  CHECK(rc == 0);
  CHECK_THAT(coord.out(), Catch::Contains("trained 3 steps"));

  ts_test::Process waiting = ts_test::start(
      "tls_waiting",
      ts_test::coordinator_args({"--external-workers", "1", "--tls-cert", dir + "/cert.pem", "--tls-key",
                                 dir + "/key.pem", "--port-file", port_file, "--connect-timeout", "30"}),
      {"THREADSPLIT_TOKEN=tls-token"});
  fs::remove(port_file);
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  const std::string addr = "127.0.0.1:" + std::to_string(std::stoi(ts_test::read_text(port_file)));
  ts_test::Process plain = ts_test::start("tls_plain", {THREADSPLIT_WORKER_BIN, "--coordinator", addr, "--connect-timeout", "2"},
                                          {"THREADSPLIT_TOKEN=tls-token", "OMP_NUM_THREADS=1"});
  CHECK(ts_test::wait_exit(plain, 30) == 3);
  ts_test::Process secure = ts_test::start(
      "tls_secure", {THREADSPLIT_WORKER_BIN, "--coordinator", addr},
      {"THREADSPLIT_TOKEN=tls-token", "OMP_NUM_THREADS=1", "THREADSPLIT_TLS_CA=" + dir + "/cert.pem"});
  CHECK(ts_test::wait_until([&] { return waiting.out().find("worker 0 pid") != std::string::npos; }, 60));
  kill(waiting.pid, SIGKILL);
  ts_test::wait_exit(waiting, 10);
  CHECK(ts_test::wait_exit(secure, 60) == 3);
}

TEST_CASE("a hand-started worker that stops answering is lost after the slowest recent step plus "
          "the grace, and the run goes on without it",
          "[integration][reliability]") {
  const std::string port_file = ts_test::tmp_dir() + "/silent.port";
  fs::remove(port_file);
  const std::string token = "silent-test-token-42";
  ts_test::Process coord = ts_test::start(
      "silent_coord",
      ts_test::coordinator_args({"--external-workers", "2", "--steps", "120", "--eval-every", "0",
                                 "--port-file", port_file, "--on-worker-failure", "continue",
                                 "--failure-grace", "2", "--progress", "on"}),
      {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  const std::vector<std::string> worker = {THREADSPLIT_WORKER_BIN, "--coordinator",
                                           "127.0.0.1:" + std::to_string(std::stoi(ts_test::read_text(port_file)))};
  ts_test::Process w0 = ts_test::start("silent_w0", worker, {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  ts_test::Process w1 = ts_test::start("silent_w1", worker, {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  REQUIRE(ts_test::wait_until([&] { return coord.out().find("worker 1 pid") != std::string::npos; }, 60));
  REQUIRE(ts_test::wait_for_random_step(coord, 10, 50));
  kill(w1.pid, SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  const bool noticed = ts_test::wait_until(
      [&] { return coord.err().find("WORKER LOST") != std::string::npos; }, 30);
  const double took = seconds_since(stopped);
  const int rc = ts_test::wait_exit(coord, 120);
  kill(w1.pid, SIGKILL);
  ts_test::wait_exit(w1, 10);
  INFO(coord.out() << coord.err() << "\nnoticed after " << took << " s");
  CHECK(noticed);
  CHECK(took < 2 + 3);  // the grace beyond a step of well under a second, plus polling
  CHECK_THAT(coord.err(), Catch::Contains("did not answer during step") && Catch::Contains("--failure-grace 2"));
  CHECK(rc == 0);
  CHECK(ts_test::wait_exit(w0, 30) == 0);
}
