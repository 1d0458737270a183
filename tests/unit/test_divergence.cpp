// Runs that diverge and values that lie, outside the collective (tests/unit/test_collective.cpp
// has the gather's side): the divergence guard's checks and undo, a checkpoint holding a
// non-finite value refused by name, a non-finite loss flagged as divergence on the wire, and
// --max-grad-norm's validation.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "divergence_guard.h"
#include "network.h"
#include "optimizer.h"
#include "run_options.h"
#include "wire_checks.h"

using namespace ts;
namespace fs = std::filesystem;

namespace {

std::string tmp_path(const std::string& name) {
  const fs::path dir = fs::path(TEST_TMP_DIR) / "divergence";
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string refusal(std::vector<std::string> args) {
  std::vector<char*> argv;
  static char prog[] = "threadsplit";
  argv.push_back(prog);
  for (auto& a : args) argv.push_back(&a[0]);
  try {
    validate_options(parse_run_options(int(argv.size()), argv.data()));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("the divergence guard names the first non-finite value by tensor and element", "[divergence]") {
  const NetworkSpec net = build_network("seed_cnn");
  DivergenceGuard guard(net);
  std::vector<float> v(net.num_params, 1.f);
  CHECK(guard.first_nonfinite(v.data()).empty());
  const ParamSpec& p = net.params[1];
  v[p.offset + 2] = std::numeric_limits<float>::quiet_NaN();
  CHECK(guard.first_nonfinite(v.data()) ==
        "nan at " + p.name + " element 2 (flat index " + std::to_string(p.offset + 2) + ")");
}

TEST_CASE("the divergence guard finds an overflowed optimizer slot and puts the kept state back", "[divergence]") {
  const NetworkSpec net = build_network("seed_cnn");
  DivergenceGuard guard(net);
  OptimizerConfig cfg;  // Adam
  auto opt = make_optimizer(cfg, net.num_params);
  std::vector<float> params(net.num_params, 0.25f), grad(net.num_params, 0.01f);
  opt->step(params.data(), grad.data());
  const std::vector<float> good = params;
  const OptimizerSnapshot good_opt = opt->snapshot();
  guard.keep(params, *opt);
  grad[7] = 1e25f;  // finite; 0.001 * g * g is not
  opt->step(params.data(), grad.data());
  CHECK(std::isfinite(params[7]));  // the parameter hardly moves: only v shows it
  CHECK_THAT(guard.check_state(params, *opt), Catch::StartsWith("the optimizer state 'v': inf at "));
  guard.restore(&params, opt.get());
  CHECK(params == good);
  CHECK(opt->iterations() == good_opt.iterations);
  CHECK(opt->slots()[1].values == good_opt.slots[1].values);
  CHECK(guard.check_state(params, *opt).empty());
  params[3] = std::numeric_limits<float>::infinity();
  CHECK_THAT(guard.check_state(params, *opt), Catch::StartsWith("the parameters: inf at "));
}

TEST_CASE("a checkpoint whose parameters or optimizer state hold a non-finite value is refused by name", "[divergence][checkpoint]") {
  const NetworkSpec net = build_network("seed_cnn");
  TrainingState state;
  state.params.assign(net.num_params, 0.5f);
  auto opt = make_optimizer(OptimizerConfig{}, net.num_params);
  const std::string clean = tmp_path("clean.ckpt");
  save_checkpoint(clean, net, state, opt.get());
  CHECK(load_checkpoint(clean, net).params == state.params);

  const ParamSpec& p = net.params[2];
  state.params[p.offset + 4] = std::numeric_limits<float>::quiet_NaN();
  const std::string nan_param = tmp_path("nan-param.ckpt");
  save_checkpoint(nan_param, net, state, opt.get());  // its CRC is right: only the value is wrong
  CHECK_THROWS_WITH(load_checkpoint(nan_param, net),
                    Catch::StartsWith("cannot load checkpoint " + nan_param) &&
                        Catch::Contains("parameter tensor '" + p.name + "' holds a non-finite value (nan at element 4)"));

  state.params.assign(net.num_params, 0.5f);
  OptimizerSnapshot snap = opt->snapshot();
  snap.slots[1].values[net.params[0].offset + 1] = std::numeric_limits<float>::infinity();
  opt->restore(snap);
  const std::string inf_slot = tmp_path("inf-slot.ckpt");
  save_checkpoint(inf_slot, net, state, opt.get());
  CHECK_THROWS_AS(load_checkpoint(inf_slot, net), CheckpointError);
  CHECK_THROWS_WITH(load_checkpoint(inf_slot, net),
                    Catch::Contains("optimizer slot tensor '" + net.params[0].name +
                                    "/v' holds a non-finite value (inf at element 1)"));
}

TEST_CASE("a non-finite loss on the wire is flagged as divergence, a negative one is a plain refusal", "[divergence][wire]") {
  WireLimits l;
  l.run_id = "run1";
  l.num_params = 2;
  l.max_samples = 8;
  l.world_size = 2;
  threadsplit::WorkerMessage m;
  threadsplit::StepResult* r = m.mutable_step();
  r->set_run_id("run1");
  r->set_samples(4);
  r->set_gradient(std::string(8, '\0'));
  r->set_loss_sum(std::numeric_limits<double>::infinity());
  bool nonfinite = false;
  CHECK_THAT(check_worker_message(m, l, &nonfinite), Catch::Contains("(a non-finite loss)"));
  CHECK(nonfinite);
  r->set_loss_sum(-1);
  CHECK_THAT(check_worker_message(m, l, &nonfinite), Catch::StartsWith("a step result with loss sum -1"));
  CHECK_FALSE(nonfinite);
  threadsplit::WorkerMessage e;
  e.mutable_eval()->set_run_id("run1");
  e.mutable_eval()->set_samples(3);
  e.mutable_eval()->set_loss_sum(std::numeric_limits<double>::quiet_NaN());
  CHECK_THAT(check_worker_message(e, l, &nonfinite), Catch::Contains("(a non-finite loss)"));
  CHECK(nonfinite);
}

TEST_CASE("the max-grad-norm flag takes a finite positive bound and is off by default", "[divergence][options]") {
  CHECK(refusal({"--data", "/d"}) == "(accepted)");
  CHECK(refusal({"--data", "/d", "--max-grad-norm", "5"}) == "(accepted)");
  CHECK_THAT(refusal({"--data", "/d", "--max-grad-norm", "0"}), Catch::StartsWith("--max-grad-norm must be positive, got 0"));
  CHECK_THAT(refusal({"--data", "/d", "--max-grad-norm", "-1"}), Catch::StartsWith("--max-grad-norm must be positive"));
  CHECK_THAT(refusal({"--data", "/d", "--max-grad-norm", "nan"}), Catch::StartsWith("--max-grad-norm expects a number, got 'nan'"));
  CHECK_THAT(refusal({"--data", "/d", "--max-grad-norm", "inf"}), Catch::StartsWith("--max-grad-norm expects a number, got 'inf'"));
  std::vector<char*> argv;
  static char prog[] = "threadsplit";
  argv.push_back(prog);
  CHECK(parse_run_options(1, argv.data()).max_grad_norm == 0);
  CHECK_THAT(usage_text("threadsplit"), Catch::Contains("--max-grad-norm") && Catch::Contains("outlier"));
}
