// --exchange-only, the run mode behind bench/exchange_bench.sh: the workers compute nothing
// and send the known gradient of common/exchange_only.h, while the coordinator's whole path
// (checks, sum, optimizer, broadcast, report) runs as in training.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "exchange_only.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"

using ts::JsonNode;

TEST_CASE("an --exchange-only run computes nothing, moves the parameters by exactly the known "
          "gradient, and says so in its report",
          "[integration][exchange_only]") {
  const std::string dir = ts_test::tmp_dir();
  const std::string ckpt = dir + "/exchange_only.ckpt", report = dir + "/exchange_only.json";
  // Plain SGD at lr 1: each step moves every parameter by -(sum of the shares' gradients).
  const int steps = 3;
  ts_test::Process p = ts_test::start(
      "exchange_only",
      ts_test::coordinator_args({"--exchange-only", "--procs", "2", "--threads", "1", "--seed", "5",
                                 "--optimizer", "sgd", "--lr", "1", "--steps", std::to_string(steps),
                                 "--warmup-steps", "1", "--save", ckpt, "--report", report}));
  const int rc = ts_test::wait_exit(p, 120);
  INFO("stdout:\n" << p.out() << "\nstderr:\n" << p.err());
  REQUIRE(rc == 0);
  CHECK_THAT(p.err(), Catch::Contains("--exchange-only: the workers compute nothing"));

  const JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "completed");
  CHECK(r["config"]["exchange_only"].boolean());
  CHECK(r["config"]["eval_every"].num() == 0);
  CHECK_FALSE(r.has("test"));
  CHECK_FALSE(r["epochs"][0].has("validation"));
  CHECK(r["totals"]["steps"].num() == steps);
  // No worker loaded a batch or ran forward or backward; the exchange itself was timed.
  REQUIRE(r["workers"].size() == 2);
  for (size_t w = 0; w < 2; ++w) {
    const JsonNode t = r["workers"][w]["phase_totals"];
    CHECK(t["data_wait_s"].num() == 0);
    CHECK(t["forward_s"].num() == 0);
    CHECK(t["backward_s"].num() == 0);
    CHECK(t["exchange_wait_s"].num() > 0);
  }
  CHECK(r["timed"]["steps"].num() == steps - 1);
  CHECK(r["timed"]["coordinator_cpu_s"].num() > 0);
  CHECK(r["timed"]["coordinator_cpu_s"].num() ==
        Approx(r["timed"]["coordinator_cpu_user_s"].num() + r["timed"]["coordinator_cpu_system_s"].num()));

  // Each rank's share is half the global batch, so each sends kExchangeOnlyGradient / 2 in
  // every slot and the sum is kExchangeOnlyGradient: after `steps` updates every parameter sits
  // at its seed's initial value less steps x kExchangeOnlyGradient (a computed gradient would
  // differ from one slot to the next).
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  std::vector<float> start(net.num_params);
  ts::init_params(net, 5, start.data());
  const std::vector<float> end = ts::load_checkpoint(ckpt, net).params;
  REQUIRE(end.size() == start.size());
  const double moved = steps * double(ts::kExchangeOnlyGradient);  // ~2.9e-6
  size_t off = 0;
  double worst = 0;
  for (size_t i = 0; i < end.size(); ++i) {
    const double err = std::fabs(double(end[i]) - (double(start[i]) - moved));
    worst = std::max(worst, err);
    if (err > 1e-7) ++off;  // float rounding of three updates: ~1e-8
  }
  INFO("worst |end - (start - " << moved << ")| = " << worst);
  CHECK(off == 0);
}
