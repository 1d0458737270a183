// The coordinator's update of airbench94's state (common/state_update.h): a run stopped,
// checkpointed and resumed goes on bit for bit as the run that was never stopped.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "network.h"
#include "optimizer.h"
#include "state_update.h"

using namespace ts;
namespace fs = std::filesystem;

namespace {

OptimizerConfig airbench_config() {
  OptimizerConfig c;
  c.kind = "sgd";
  c.learning_rate = 0.01;
  c.momentum = 0.85;
  c.nesterov = true;
  c.weight_decay = 0.002;
  c.bias_lr_scale = 64;
  c.lr_schedule = "triangular";
  c.lookahead_every = 5;
  return c;
}

// Step t's summed gradient; at the running-statistics slots, sums of `kGroups` positive values.
constexpr int64_t kGroups = 4;
std::vector<float> gradient(const NetworkSpec& net, int64_t t) {
  std::vector<float> g(net.num_params);
  for (size_t i = 0; i < g.size(); ++i) g[i] = float(0.01 * std::cos(double(i % 1013) * 0.37 + double(t)));
  for (const ParamSpec& p : net.params)
    if (p.is_buffer())
      for (size_t i = p.offset; i < p.offset + p.size; ++i)
        g[i] = float(kGroups) * (1.0f + 0.5f * float(std::sin(double(i) + double(t))));
  return g;
}

// Steps [from, to) of a run of `total`, the whitening bias trained in "epoch 0" (steps < 6).
void train(const NetworkSpec& net, Optimizer& opt, std::vector<float>& params, int64_t from, int64_t to,
           int64_t total) {
  for (int64_t t = from; t < to; ++t) {
    set_whitening_bias_for_epoch(opt, net, t < 6 ? 0 : 1, 1);
    const std::vector<float> g = gradient(net, t);
    update_state(net, opt, params.data(), g.data(), kGroups, t, total);
  }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("airbench94's update resumed from a checkpoint continues bit for bit, lookahead EMA included", "[optim][lookahead]") {
  const NetworkSpec net = build_network("airbench94");
  const OptimizerConfig cfg = airbench_config();
  const int64_t total = 12;
  std::vector<float> initial(net.num_params);
  init_params(net, 7, initial.data());

  auto straight = make_optimizer(cfg, net);
  std::vector<float> p_straight = initial;
  train(net, *straight, p_straight, 0, total, total);

  // Stopped after 7 steps (one lookahead behind it, the whitening bias frozen), saved, loaded.
  auto first = make_optimizer(cfg, net);
  std::vector<float> p = initial;
  train(net, *first, p, 0, 7, total);
  const fs::path dir = fs::path(TEST_TMP_DIR) / "state_update";
  fs::create_directories(dir);
  const std::string path = (dir / "step7.ckpt").string();
  TrainingState st;
  st.step = 7;
  st.params = p;
  save_checkpoint(path, net, st, first.get());
  const TrainingState back = load_checkpoint(path, net);
  REQUIRE(back.optimizer);
  CHECK(back.optimizer->config.nesterov);
  CHECK(back.optimizer->config.lookahead_every > 0);
  auto resumed = make_optimizer(cfg, net);
  resumed->restore(*back.optimizer);
  std::vector<float> p_resumed = back.params;
  train(net, *resumed, p_resumed, 7, total, total);

  CHECK(same_bits(p_resumed, p_straight));
  REQUIRE(resumed->slots().size() == 2);
  CHECK(resumed->slots()[0].name == "momentum_buffer");
  CHECK(resumed->slots()[1].name == "lookahead");
  for (size_t k = 0; k < 2; ++k) CHECK(same_bits(resumed->slots()[k].values, straight->slots()[k].values));
  // The run ended on the EMA (step 12 is not a multiple of 5: state = the EMA of step 10).
  CHECK(same_bits(p_straight, straight->slots()[1].values));
  // It moved: the frozen whitening weight did not, the running statistics did.
  const ParamSpec& whiten = net.params[0];
  REQUIRE(whiten.frozen);
  CHECK(std::memcmp(p_straight.data(), initial.data(), whiten.size * sizeof(float)) == 0);
  CHECK_FALSE(same_bits(p_straight, initial));

  // A run without the lookahead (or another momentum form) refuses the state.
  OptimizerConfig plain = cfg;
  plain.lookahead_every = 0;
  CHECK_THROWS_WITH(make_optimizer(plain, net)->restore(*back.optimizer), Catch::Contains("lookahead"));
  plain = cfg;
  plain.nesterov = false;
  CHECK_THROWS_WITH(make_optimizer(plain, net)->restore(*back.optimizer), Catch::Contains("momentum_buffer"));
}

TEST_CASE("update_state: the schedule's factor for the step, the running statistics from the sum", "[optim]") {
  const NetworkSpec net = build_network("airbench94");
  OptimizerConfig cfg = airbench_config();
  cfg.lookahead_every = 0;
  auto opt = make_optimizer(cfg, net);
  std::vector<float> params(net.num_params);
  init_params(net, 1, params.data());
  const std::vector<float> g = gradient(net, 0);
  CHECK(update_state(net, *opt, params.data(), g.data(), kGroups, 0, 100) == Approx(0.2));
  CHECK(update_state(net, *opt, params.data(), g.data(), kGroups, 23, 100) == Approx(1.0));
  // running_var starts at 1: 0.6 * (0.6 + 0.4 b) + 0.4 b after two steps with batch value b.
  for (const ParamSpec& p : net.params)
    if (p.role == ParamSpec::Role::kRunningVar) {
      const double b = double(g[p.offset]) / double(kGroups);
      CHECK(params[p.offset] == Approx(0.6 * (0.6 + 0.4 * b) + 0.4 * b).epsilon(1e-6));
    }
}
