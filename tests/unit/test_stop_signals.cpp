// The signal side of spawning (coordinator/stop_signals.h): a spawned worker must not be
// taken down by a stop signal meant for its coordinator, nor inherit the coordinator's
// blocked mask (which would hide every later signal from it).
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core_set.h"
#include "stop_signals.h"
#include "worker_launcher.h"

namespace {

// The hex mask of a /proc/PID/status line ("SigIgn:\t0000000000004003").
unsigned long long status_mask(const std::string& status, const std::string& key) {
  const size_t at = status.find(key + ":");
  REQUIRE(at != std::string::npos);
  return std::strtoull(status.c_str() + at + key.size() + 1, nullptr, 16);
}

bool has(unsigned long long mask, int sig) { return (mask >> (sig - 1)) & 1; }

}  // namespace

TEST_CASE("a launched worker ignores SIGINT, SIGTERM and SIGHUP and has none of them blocked",
          "[launcher][signals]") {
  // As in the coordinator, where install_stop_signals blocked them in every thread.
  sigset_t stop, old;
  sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop, sig);
  pthread_sigmask(SIG_BLOCK, &stop, &old);
  const ts::CoreSet mine = ts::CoreSet::of_this_process();
  const std::string out = std::string(TEST_TMP_DIR) + "/signals_" + std::to_string(getpid());
  std::filesystem::create_directories(TEST_TMP_DIR);
  ts::WorkerLaunch l;
  l.program = "/bin/sh";
  l.args = {"-c", "grep -E '^Sig(Ign|Blk):' /proc/self/status > " + out};
  l.cores = mine.slice(0, 1);
  const pid_t pid = ts::launch_worker(l);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  REQUIRE(pid > 0);
  CHECK(ts::describe_wait_status(ts::stop_worker(pid, 10)) == "exited with status 0");
  std::ifstream in(out);
  std::stringstream s;
  s << in.rdbuf();
  INFO(s.str());
  const unsigned long long ignored = status_mask(s.str(), "SigIgn"), blocked = status_mask(s.str(), "SigBlk");
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    INFO(ts::signal_name(sig));
    CHECK(has(ignored, sig));
    CHECK_FALSE(has(blocked, sig));
  }
  std::filesystem::remove(out);
}

TEST_CASE("a stop request names its signal and exits with 128 + signo", "[signals]") {
  CHECK(ts::signal_name(SIGINT) == "SIGINT");
  CHECK(ts::signal_name(SIGTERM) == "SIGTERM");
  CHECK(ts::signal_name(SIGHUP) == "SIGHUP");
  CHECK(ts::signal_name(SIGUSR1) == "signal " + std::to_string(SIGUSR1));
  const ts::StopRequested e(SIGTERM);
  CHECK(e.exit_status() == 143);
  CHECK(std::string(e.what()) == "stopped by SIGTERM");
  CHECK(ts::StopRequested(SIGINT).exit_status() == 130);
  CHECK(ts::StopRequested(SIGHUP).exit_status() == 129);
  // Nothing asked to stop in this process: nothing thrown.
  CHECK(ts::stop_signal() == 0);
  CHECK_NOTHROW(ts::throw_if_stop_requested());
}
