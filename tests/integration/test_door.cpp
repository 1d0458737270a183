// Before authentication, and the edges next to it (docs/reliability.md, "Before
// authentication"): oversized Hellos refused with a truncated echo while the report stays
// small, a stream that never says Hello closed after --connect-timeout, a result before its
// deal refused, a worker whose CIFAR-10 copy differs refused naming both fingerprints, ranks
// from flags and launcher variables that do not fit refused, non-finite durations refused,
// and inherited THREADSPLIT_TLS_* kept away from spawned workers.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "json_io.h"
#include "run_helpers.h"

namespace fs = std::filesystem;

namespace {

// A coordinator waiting for `workers` hand-started workers; returns its address.
std::string start_external(ts_test::Process* coord, const std::string& name, const std::string& token,
                           int workers, const std::vector<std::string>& extra) {
  const std::string port_file = ts_test::tmp_dir() + "/" + name + ".port";
  fs::remove(port_file);
  std::vector<std::string> flags = {"--external-workers", std::to_string(workers), "--eval-every", "0",
                                    "--port-file", port_file};
  flags.insert(flags.end(), extra.begin(), extra.end());
  *coord = ts_test::start(name, ts_test::coordinator_args(flags), {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  return "127.0.0.1:" + std::to_string(std::stoi(ts_test::read_text(port_file)));
}

size_t longest_line(const std::string& text) {
  size_t longest = 0, start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    longest = std::max(longest, end - start);
    start = end + 1;
  }
  return longest;
}

}  // namespace

TEST_CASE("oversized Hellos are refused with a truncated echo, and the log and report stay small",
          "[integration][door]") {
  const std::string token = "door-test-token-oversized";
  const std::string report = ts_test::tmp_dir() + "/door_oversized_report.json";
  fs::remove(report);
  ts_test::Process coord;
  const std::string addr = start_external(&coord, "door_oversized", token, 1,
                                          {"--steps", "5", "--report", report});
  ts_test::Process rogue = ts_test::start("door_oversized_rogue", {ROGUE_WORKER_BIN, addr, "oversized-hello"},
                                          {"THREADSPLIT_TOKEN=" + token});
  const int rogue_rc = ts_test::wait_exit(rogue, 120);
  INFO("rogue:\n" << rogue.out() << rogue.err());
  CHECK(rogue_rc == 0);
  // The first Hello held the right token: refused for its sizes, the string cut short.
  CHECK_THAT(rogue.out(), Catch::Contains("first status 7: a Hello whose hostname is 204800 bytes (at most 256)") &&
                              Catch::Contains("... (204800 bytes)") && Catch::Contains("refused 52 Hellos"));
  // The last was larger than any message of this model: refused by gRPC's receive limit.
  CHECK_THAT(rogue.out(), Catch::Contains("last status 8"));
  CHECK(longest_line(rogue.out()) < 400);

  ts_test::Process good = ts_test::start("door_oversized_good", {THREADSPLIT_WORKER_BIN, "--coordinator", addr},
                                         {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  const int rc = ts_test::wait_exit(coord, 120);
  INFO("coordinator:\n" << coord.out() << coord.err().substr(0, 4000));
  CHECK(rc == 0);
  CHECK(ts_test::wait_exit(good, 30) == 0);
  CHECK_THAT(coord.err(), Catch::Contains("wrong run token") && Catch::Contains("204800 bytes"));
  CHECK(longest_line(coord.err()) < 400);       // 52 x 800 KB never reached the log
  CHECK(coord.err().size() < 64 * 1024);
  REQUIRE(fs::exists(report));
  CHECK(fs::file_size(report) < 256 * 1024);    // nor the report
  const ts::JsonNode j = ts::read_json_file(report);
  // The first 20 refusals, then one line counting the rest.
  const std::vector<ts::JsonNode> refused = j["refused_workers"].items();
  REQUIRE(refused.size() == 21);
  for (const ts::JsonNode& line : refused) CHECK(line.str().size() < 400);
  CHECK_THAT(refused.back().str(), Catch::Matches("and \\d+ more refusals \\((5[1-9]|[6-9]\\d) in all\\)"));
}

TEST_CASE("a stream that sends no Hello is closed after --connect-timeout, and a result before its "
          "deal is refused, while the run goes on",
          "[integration][door]") {
  const std::string token = "door-test-token-silent";
  ts_test::Process coord;
  const std::string addr = start_external(&coord, "door_silent", token, 2,
                                          {"--steps", "1000000", "--connect-timeout", "8",
                                           "--on-worker-failure", "continue"});
  ts_test::Process silent = ts_test::start("door_silent_rogue", {ROGUE_WORKER_BIN, addr, "silent-session"},
                                           {"THREADSPLIT_TOKEN=" + token});
  // The early one takes a rank, is refused and lost; the run goes on with the good worker,
  // started only once the early result was refused: were the early one the last to join, the
  // first deal could be queued before its result is read, which then meets the collective's
  // checks instead. (Its stream ends, with the status, once the run lets the lost rank go.)
  ts_test::Process early = ts_test::start("door_early_rogue", {ROGUE_WORKER_BIN, addr, "early-result"},
                                          {"THREADSPLIT_TOKEN=" + token});
  CHECK(ts_test::wait_until(
      [&] { return coord.err().find("refused a message from worker") != std::string::npos; }, 30));
  ts_test::Process good = ts_test::start("door_silent_good", {THREADSPLIT_WORKER_BIN, "--coordinator", addr},
                                         {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  const int silent_rc = ts_test::wait_exit(silent, 60);
  INFO("silent:\n" << silent.out() << silent.err() << "\nearly:\n" << early.out() << early.err()
                   << "\ncoordinator:\n" << coord.out() << coord.err());
  CHECK(silent_rc == 0);
  // DEADLINE_EXCEEDED is 4; the client may see CANCELLED (1) as the call is cancelled too.
  CHECK_THAT(silent.out(), Catch::Contains("closed after"));
  CHECK(ts_test::wait_exit(early, 60) == 0);
  CHECK_THAT(early.out(), Catch::Contains("joined as rank") &&
                              Catch::Contains("a step result (step 0) before this worker was dealt any step"));
  CHECK(ts_test::wait_until(
      [&] { return coord.err().find("no Hello within 8 s of connecting") != std::string::npos; }, 30));
  // The run went on: it is training with the good worker.
  CHECK_THAT(coord.err(), Catch::Contains("refused a message from worker"));
  CHECK(ts_test::process_gone(coord.pid) == false);
  kill(coord.pid, SIGTERM);
  ts_test::wait_exit(coord, 60);
  ts_test::wait_exit(good, 60);
}

TEST_CASE("a worker whose CIFAR-10 copy differs by one label is refused, naming both fingerprints",
          "[integration][door]") {
  const std::string src = ts_test::test_data_dir();
  const std::string copy = ts_test::tmp_dir() + "/door_data_copy";
  fs::remove_all(copy);
  fs::create_directories(copy);
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin", "test_batch.bin"})
    fs::copy_file(src + "/" + f, copy + "/" + f);
  {
    std::fstream f(copy + "/data_batch_3.bin", std::ios::in | std::ios::out | std::ios::binary);
    const std::streamoff at = 3073 * 17;  // record 17's label byte
    f.seekg(at);
    char label = 0;
    f.read(&label, 1);
    label = char((label + 1) % 10);
    f.seekp(at);
    f.write(&label, 1);
  }
  const std::string token = "door-test-token-data";
  ts_test::Process coord;
  const std::string addr = start_external(&coord, "door_data", token, 1, {"--steps", "3"});
  ts_test::Process other = ts_test::start("door_data_other",
                                          {THREADSPLIT_WORKER_BIN, "--coordinator", addr, "--data", copy},
                                          {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  const int other_rc = ts_test::wait_exit(other, 60);
  INFO("worker:\n" << other.err() << "\ncoordinator:\n" << coord.err());
  CHECK(other_rc == 4);
  CHECK_THAT(other.err(), Catch::Contains("refused this worker: the worker's CIFAR-10 copy (fingerprint ") &&
                              Catch::Contains("differs from the coordinator's") &&
                              Catch::Contains("point its --data at it"));
  CHECK_THAT(coord.err(), Catch::Contains("CIFAR-10 copy (fingerprint"));
  // An identical copy is admitted (the same directory, given with --data).
  ts_test::Process same = ts_test::start("door_data_same",
                                         {THREADSPLIT_WORKER_BIN, "--coordinator", addr, "--data", src},
                                         {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  CHECK(ts_test::wait_exit(coord, 120) == 0);
  CHECK(ts_test::wait_exit(same, 30) == 0);

  // A worker that maps the coordinator's own path (no --data) compares with the Welcome's
  // fingerprint: here the copy is changed back after the coordinator opened it.
  ts_test::Process coord2;
  const std::string addr2 = start_external(&coord2, "door_data_changed", token, 1, {"--steps", "3", "--data", copy});
  {
    std::fstream f(copy + "/data_batch_3.bin", std::ios::in | std::ios::out | std::ios::binary);
    const std::streamoff at = 3073 * 17;
    f.seekg(at);
    char label = 0;
    f.read(&label, 1);
    label = char((label + 9) % 10);
    f.seekp(at);
    f.write(&label, 1);
  }
  ts_test::Process mapped = ts_test::start("door_data_mapped", {THREADSPLIT_WORKER_BIN, "--coordinator", addr2},
                                           {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  const int mapped_rc = ts_test::wait_exit(mapped, 60);
  INFO("worker:\n" << mapped.err());
  CHECK(mapped_rc == 2);
  CHECK_THAT(mapped.err(), Catch::Contains("this worker's CIFAR-10 copy " + copy) &&
                               Catch::Contains("differs from the coordinator's (fingerprint ") &&
                               Catch::Contains("point --data at it"));
  kill(coord2.pid, SIGTERM);
  ts_test::wait_exit(coord2, 60);
  fs::remove_all(copy);
}

TEST_CASE("ranks that do not fit are refused naming the flag or variable and the range",
          "[integration][door][flags]") {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string message;
  };
  const std::vector<std::string> worker = {THREADSPLIT_WORKER_BIN, "--coordinator", "127.0.0.1:1",
                                           "--connect-timeout", "1"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = worker;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::vector<Case> cases = {
      {with({"--rank", "4294967297"}), {}, "--rank must be at most 2147483647, got 4294967297"},
      {with({"--rank", "-1"}), {}, "--rank must be at least 0, got -1"},
      {with({"--rank", "abc"}), {}, "--rank expects a whole number, got 'abc'"},
      {worker, {"OMPI_COMM_WORLD_RANK=4294967297"}, "OMPI_COMM_WORLD_RANK must be a rank in 0..2147483647, got 4294967297"},
      {worker, {"SLURM_PROCID=-3"}, "SLURM_PROCID must be a rank in 0..2147483647, got '-3'"},
      {worker, {"THREADSPLIT_RANK=7x"}, "THREADSPLIT_RANK must be a rank in 0..2147483647, got '7x'"},
  };
  int i = 0;
  for (const Case& c : cases) {
    std::vector<std::string> env = {"THREADSPLIT_TOKEN=t", "THREADSPLIT_RANK=", "OMPI_COMM_WORLD_RANK=",
                                    "PMI_RANK=", "SLURM_PROCID="};
    env.insert(env.end(), c.env.begin(), c.env.end());
    ts_test::Process p = ts_test::start("door_rank_" + std::to_string(i++), c.args, env);
    const int rc = ts_test::wait_exit(p, 30);
    INFO(c.message << ": " << p.err());
    CHECK(rc == 2);
    CHECK_THAT(p.err(), Catch::Contains(c.message));
  }
}

TEST_CASE("every duration flag refuses inf, nan and negative values in one sentence naming it",
          "[integration][door][flags]") {
  int i = 0;
  for (const std::string flag : {"--connect-timeout", "--step-timeout", "--failure-grace", "--autotune-time"}) {
    for (const std::string v : {"inf", "nan", "-1", "-inf"}) {
      ts_test::Process p = ts_test::start("door_duration_" + std::to_string(i++),
                                          ts_test::coordinator_args({flag, v}));
      const int rc = ts_test::wait_exit(p, 30);
      INFO(flag << " " << v << ": " << p.err());
      CHECK(rc == 2);
      CHECK_THAT(p.err(), Catch::Contains(flag));
      CHECK(p.out().empty());
    }
  }
  for (const std::string v : {"inf", "nan", "-1"}) {
    ts_test::Process p = ts_test::start(
        "door_duration_worker_" + std::to_string(i++),
        {THREADSPLIT_WORKER_BIN, "--coordinator", "127.0.0.1:1", "--connect-timeout", v}, {"THREADSPLIT_TOKEN=t"});
    CHECK(ts_test::wait_exit(p, 30) == 2);
    CHECK_THAT(p.err(), Catch::Contains("--connect-timeout"));
  }
}

TEST_CASE("inherited THREADSPLIT_TLS_* never reach spawned workers of a plain run",
          "[integration][door]") {
  // Were they inherited, the workers would try TLS with files that do not exist and never join.
  ts_test::Process p = ts_test::start(
      "door_tls_env",
      ts_test::coordinator_args({"--procs", "1", "--threads", "1", "--steps", "3", "--eval-every", "0",
                                 "--connect-timeout", "30"}),
      {"THREADSPLIT_TLS_CA=/nonexistent/ca.pem", "THREADSPLIT_TLS_CERT=/nonexistent/cert.pem",
       "THREADSPLIT_TLS_KEY=/nonexistent/key.pem"});
  const int rc = ts_test::wait_exit(p, 120);
  INFO(p.out() << p.err());
  CHECK(rc == 0);
  CHECK_THAT(p.out(), Catch::Contains("trained 3 steps"));
}
