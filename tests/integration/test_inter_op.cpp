// --inter-op I: a worker's share as I micro-batches running at once, each on its own pinned
// team. The math does not change (the gradients are summed in lane order), and the report
// shows each team's real cores.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "checkpoint.h"
#include "core_set.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"
#include "skip.h"

using ts::JsonNode;

namespace {

struct Split {
  int procs, inter_op, threads;
  std::string tag() const {
    return "interop_" + std::to_string(procs) + "x" + std::to_string(inter_op) + "x" + std::to_string(threads);
  }
};

// 20 SGD steps of seed_cnn at a split: its parameters and report.
std::pair<std::vector<float>, JsonNode> train(const Split& s) {
  const std::string dir = ts_test::tmp_dir();
  const std::string ckpt = dir + "/" + s.tag() + ".ckpt", report = dir + "/" + s.tag() + ".json";
  ts_test::Process p = ts_test::start(
      s.tag(), ts_test::coordinator_args({"--procs", std::to_string(s.procs), "--inter-op",
                                          std::to_string(s.inter_op), "--threads",
                                          std::to_string(s.threads), "--steps", "20", "--seed", "7",
                                          "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9",
                                          "--eval-every", "0", "--save", ckpt, "--report", report}));
  const int rc = ts_test::wait_exit(p, 600);
  INFO(s.tag() << " stdout:\n" << p.out() << "\nstderr:\n" << p.err());
  REQUIRE(rc == 0);
  JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "completed");
  CHECK(r["totals"]["steps"].num() == 20);
  CHECK(r["split"]["inter_op"].num() == s.inter_op);
  return {ts::load_checkpoint(ckpt, ts::build_network("seed_cnn")).params, r};
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, double* max_abs) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  *max_abs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    *max_abs = std::max(*max_abs, double(std::fabs(a[i])));
    d = std::max(d, double(std::fabs(a[i] - b[i])));
  }
  return d;
}

}  // namespace

TEST_CASE("inter-op: 2 teams x 1 thread and 1 team x 2 threads reach the same parameters after 20 steps, "
          "and each team runs on its own core",
          "[integration][training][inter_op]") {
  const ts::CoreSet mine = ts::CoreSet::of_this_process();
  if (mine.size() < 2) {
    ts_test::skip_test("this process may use " + std::to_string(mine.size()) +
                       " core; two teams of one thread need two");
    return;
  }
  const auto teams = train({1, 2, 1});
  const auto one_team = train({1, 1, 2});
  double max_abs = 0;
  const double diff = max_abs_diff(teams.first, one_team.first, &max_abs);
  INFO("max |p| " << max_abs << ", max |p(1x2x1) - p(1x1x2)| " << diff);
  CHECK(diff > 0);                 // the sums' order differs, and so do the bits
  CHECK(diff < 1e-4 * max_abs);    // ... and nothing else

  // The binding each team really got: two teams of one thread, on cores 0 and 1 of the
  // worker's slice, pinned by the worker itself (OMP_PROC_BIND=false).
  const JsonNode w = teams.second["workers"][0];
  const ts::CoreSet assigned = ts::CoreSet::parse(w["assigned_cores"].str());
  REQUIRE(assigned.size() == 2);
  CHECK(w["inter_op"].num() == 2);
  CHECK(w["omp_threads"].num() == 1);
  CHECK(w["omp_proc_bind"].str() == "false");
  const JsonNode team_cores = w["team_cores"];
  REQUIRE(team_cores.size() == 2);
  CHECK(team_cores[0].str() == std::to_string(assigned[0]));
  CHECK(team_cores[1].str() == std::to_string(assigned[1]));
  const JsonNode per_thread = w["omp_thread_cores"];
  REQUIRE(per_thread.size() == 2);
  CHECK(per_thread[0].str() == std::to_string(assigned[0]));
  CHECK(per_thread[1].str() == std::to_string(assigned[1]));
  // One team: as before, libgomp's own binding.
  const JsonNode w1 = one_team.second["workers"][0];
  CHECK(w1["inter_op"].num() == 1);
  CHECK(w1["omp_proc_bind"].str() == "close");
}
