// The inter-op pieces that need no second process: how a share splits into micro-batches,
// the lanes' job dispatch, and the worker's reading of THREADSPLIT_INTER_OP.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <numeric>
#include <stdexcept>

#include "core_set.h"
#include "inter_op_teams.h"
#include "omp_setup.h"

TEST_CASE("a share splits into micro-batches of whole groups, the partial group last", "[inter_op]") {
  using V = std::vector<int>;
  CHECK(ts::micro_batch_sizes(128, 1, 2) == V{64, 64});
  CHECK(ts::micro_batch_sizes(127, 1, 2) == V{64, 63});
  CHECK(ts::micro_batch_sizes(256, 64, 2) == V{128, 128});
  CHECK(ts::micro_batch_sizes(192, 64, 2) == V{128, 64});   // whole groups: never 96 + 96
  CHECK(ts::micro_batch_sizes(200, 64, 2) == V{128, 72});   // the partial group stays last
  CHECK(ts::micro_batch_sizes(64, 64, 2) == V{64, 0});      // fewer groups than lanes
  CHECK(ts::micro_batch_sizes(10, 64, 3) == V{10, 0, 0});   // only a partial group: lane 0
  CHECK(ts::micro_batch_sizes(0, 1, 2) == V{0, 0});
  for (int n : {1, 63, 64, 65, 500, 1024})
    for (int lanes : {1, 2, 3, 4}) {
      const V c = ts::micro_batch_sizes(n, 64, lanes);
      CHECK(std::accumulate(c.begin(), c.end(), 0) == n);
    }
  CHECK_THROWS_AS(ts::micro_batch_sizes(10, 0, 2), std::invalid_argument);
}

TEST_CASE("inter-op lanes run every job in every lane and rethrow a lane's exception", "[inter_op]") {
  ts::InterOpTeams teams(3, 1, ts::CoreSet::of_this_process());
  REQUIRE(teams.lanes() == 3);
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> mask{0};
    teams.run([&](int lane) { mask |= 1 << lane; });
    REQUIRE(mask == 7);
  }
  CHECK_THROWS_WITH(teams.run([](int lane) {
                      if (lane == 2) throw std::runtime_error("lane 2 failed");
                    }),
                    "lane 2 failed");
  // Still usable after a failed job.
  std::atomic<int> ran{0};
  teams.run([&](int) { ++ran; });
  CHECK(ran == 3);
  CHECK(teams.thread_cores().size() == 3);
}

TEST_CASE("THREADSPLIT_INTER_OP is read with its binding, and a bad one is named", "[inter_op]") {
  struct Env {
    ~Env() {
      unsetenv("THREADSPLIT_INTER_OP");
      setenv("OMP_PROC_BIND", old.c_str(), 1);
      if (old.empty()) unsetenv("OMP_PROC_BIND");
    }
    std::string old = std::getenv("OMP_PROC_BIND") ? std::getenv("OMP_PROC_BIND") : "";
  } restore;
  unsetenv("THREADSPLIT_INTER_OP");
  CHECK(ts::inter_op_from_environment() == 1);
  setenv("OMP_PROC_BIND", "false", 1);
  setenv("THREADSPLIT_INTER_OP", "4", 1);
  CHECK(ts::inter_op_from_environment() == 4);
  setenv("THREADSPLIT_INTER_OP", "two", 1);
  CHECK_THROWS_WITH(ts::inter_op_from_environment(),
                    Catch::Contains("THREADSPLIT_INTER_OP must be a whole number of teams in 1..4096, got 'two'"));
  setenv("THREADSPLIT_INTER_OP", "0", 1);
  CHECK_THROWS_AS(ts::inter_op_from_environment(), std::invalid_argument);
  setenv("OMP_PROC_BIND", "close", 1);
  setenv("THREADSPLIT_INTER_OP", "2", 1);
  CHECK_THROWS_WITH(ts::inter_op_from_environment(),
                    Catch::Contains("needs OMP_PROC_BIND=false (got 'close')") &&
                        Catch::Contains("--inter-op 2"));
}
