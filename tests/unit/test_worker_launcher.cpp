#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core_set.h"
#include "worker_launcher.h"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("a launched worker starts bound, with OpenMP settings and the token in its environment",
          "[launcher]") {
  const ts::CoreSet mine = ts::CoreSet::of_this_process();
  const ts::CoreSet one = mine.slice(mine.size() - 1, 1);  // the last core we may use
  const std::string out = std::string(TEST_TMP_DIR) + "/launch_" + std::to_string(getpid());
  std::filesystem::create_directories(TEST_TMP_DIR);
  ts::WorkerLaunch l;
  l.program = "/bin/sh";
  l.args = {"-c",
            "printf '%s|%s|%s|%s|' \"$OMP_NUM_THREADS\" \"$OMP_PLACES\" \"$OMP_PROC_BIND\" "
            "\"$THREADSPLIT_TOKEN\" > " + out +
                "; grep Cpus_allowed_list: /proc/self/status | tr -d ' \\t' >> " + out};
  l.cores = one;
  l.omp_threads = 3;
  l.extra_env = {"THREADSPLIT_TOKEN=secret-123"};
  const pid_t pid = ts::launch_worker(l);
  REQUIRE(pid > 0);
  const int status = ts::stop_worker(pid, 10);
  CHECK(ts::describe_wait_status(status) == "exited with status 0");
  const std::string got = read_file(out);
  CHECK(got == "3|" + one.omp_places() + "|close|secret-123|Cpus_allowed_list:" +
                   one.to_string() + "\n");
  unlink(out.c_str());
}

TEST_CASE("a worker program that cannot be executed is reported, not silently lost",
          "[launcher]") {
  ts::WorkerLaunch l;
  l.program = "/nonexistent/threadsplit_worker";
  l.cores = ts::CoreSet::of_this_process();
  try {
    ts::launch_worker(l);
    FAIL("launch_worker accepted a missing program");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("exec of /nonexistent/threadsplit_worker") &&
                             Catch::Contains("No such file"));
  }
}

TEST_CASE("the launcher replaces inherited OpenMP and token settings", "[launcher]") {
  // ctest runs us with OMP_NUM_THREADS set: put back what was there.
  const char* saved = std::getenv("OMP_NUM_THREADS");
  const std::string saved_omp = saved ? saved : "";
  setenv("OMP_NUM_THREADS", "99", 1);
  setenv("THREADSPLIT_TOKEN", "old", 1);
  ts::WorkerLaunch l;
  l.cores = ts::CoreSet::parse("0-1");
  l.omp_threads = 2;
  l.extra_env = {"THREADSPLIT_TOKEN=new"};
  const auto env = ts::worker_environment(l);
  int omp = 0, token = 0;
  for (const auto& e : env) {
    if (e.rfind("OMP_NUM_THREADS=", 0) == 0) {
      ++omp;
      CHECK(e == "OMP_NUM_THREADS=2");
    }
    if (e.rfind("THREADSPLIT_TOKEN=", 0) == 0) {
      ++token;
      CHECK(e == "THREADSPLIT_TOKEN=new");
    }
  }
  CHECK(omp == 1);
  CHECK(token == 1);
  if (saved) setenv("OMP_NUM_THREADS", saved_omp.c_str(), 1);
  else unsetenv("OMP_NUM_THREADS");
  unsetenv("THREADSPLIT_TOKEN");
}

TEST_CASE("the launcher passes the placement's memory policy and core order, and drops an inherited one",
          "[launcher]") {
  setenv("THREADSPLIT_MEMBIND", "interleave:0,1", 1);
  ts::WorkerLaunch l;
  l.cores = ts::CoreSet({0, 32, 1, 33});
  l.omp_threads = 2;
  l.inter_op = 2;
  auto count = [](const std::vector<std::string>& env, const std::string& entry) {
    return std::count(env.begin(), env.end(), entry);
  };
  auto env = ts::worker_environment(l);
  CHECK(count(env, "OMP_PLACES={0},{32},{1},{33}") == 1);
  CHECK(std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("THREADSPLIT_MEMBIND=", 0) == 0; }));
  l.memory = "bind:1";
  env = ts::worker_environment(l);
  CHECK(count(env, "THREADSPLIT_MEMBIND=bind:1") == 1);
  CHECK(count(env, "THREADSPLIT_MEMBIND=interleave:0,1") == 0);
  unsetenv("THREADSPLIT_MEMBIND");
}
