// The four command lines as a user meets them: --help on stdout with exit status 0, a bad
// number refused before anything starts with exit status 2 and one line on stderr,
// "program: sentence" naming the flag.
#include <catch2/catch.hpp>
#include <filesystem>

#include "run_helpers.h"

namespace {

// step_bench is built beside the coordinator: build/bench/ next to build/coordinator/.
std::string step_bench_bin() {
  return (std::filesystem::path(THREADSPLIT_BIN).parent_path().parent_path() / "bench" / "step_bench")
      .string();
}

struct Refusal {
  std::vector<std::string> argv;
  std::string line;  // the whole of stderr
};

}  // namespace

TEST_CASE("every program prints --help on stdout and refuses a bad number in one line, exit 2",
          "[integration][flags]") {
  REQUIRE(std::filesystem::exists(step_bench_bin()));
  const std::vector<std::vector<std::string>> helps = {
      {THREADSPLIT_BIN, "--help"},
      {THREADSPLIT_BIN, "sweep", "--help"},
      {THREADSPLIT_BIN, "make-synthetic-data", "-h"},
      {THREADSPLIT_WORKER_BIN, "--help"},
      {step_bench_bin(), "--help"},
  };
  int i = 0;
  for (const auto& argv : helps) {
    ts_test::Process p = ts_test::start("help_" + std::to_string(i++), argv);
    INFO(argv[0] << " " << argv[1]);
    CHECK(ts_test::wait_exit(p, 30) == 0);
    CHECK_THAT(p.out(), Catch::StartsWith("usage: "));
    CHECK_THAT(p.out(), Catch::Contains("--help"));
    CHECK(p.err().empty());
  }

  const std::vector<Refusal> cases = {
      {{THREADSPLIT_BIN, "--threads", "0", "--data", "/d"}, "threadsplit: --threads must be at least 1, got 0\n"},
      {{THREADSPLIT_BIN, "--step-timeout", "soon", "--data", "/d"},
       "threadsplit: --step-timeout expects a number, got 'soon'\n"},
      {{THREADSPLIT_BIN, "sweep", "--data", "/d", "--trial-timeout", "x"},
       "threadsplit sweep: --trial-timeout expects a number, got 'x'\n"},
      {{THREADSPLIT_BIN, "sweep", "--data", "/d", "--seed", "-1"},
       "threadsplit sweep: --seed must be at least 0, got -1\n"},
      {{THREADSPLIT_BIN, "sweep", "--data", "/d", "--busy-share", "2"},
       "threadsplit sweep: --busy-share must be in [0, 1], got 2\n"},
      {{THREADSPLIT_BIN, "make-synthetic-data", ts_test::tmp_dir() + "/never", "--seed", "x"},
       "threadsplit make-synthetic-data: --seed expects a whole number, got 'x'\n"},
      {{THREADSPLIT_WORKER_BIN, "--coordinator", "127.0.0.1:1", "--connect-timeout", "x"},
       "threadsplit_worker: --connect-timeout expects a number, got 'x'\n"},
      {{THREADSPLIT_WORKER_BIN, "--coordinator", "127.0.0.1:1", "--threads", "-1"},
       "threadsplit_worker: --threads must be at least 0, got -1\n"},
      {{step_bench_bin(), "--batch", "0"}, "step_bench: --batch must be at least 1, got 0\n"},
      {{step_bench_bin(), "--warmup", "x"}, "step_bench: --warmup expects a whole number, got 'x'\n"},
  };
  for (const auto& c : cases) {
    ts_test::Process p = ts_test::start("bad_number_" + std::to_string(i++), c.argv,
                                        {"THREADSPLIT_TOKEN=flags-test"});
    INFO(c.argv[0] << " ... " << c.argv.back());
    CHECK(ts_test::wait_exit(p, 30) == 2);
    CHECK(p.err() == c.line);
    CHECK(p.out().empty());
  }
  CHECK_FALSE(std::filesystem::exists(ts_test::tmp_dir() + "/never"));
}
