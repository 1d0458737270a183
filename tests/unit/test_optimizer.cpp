// Optimizers against values worked out by hand from Keras' update rules (see optimizer.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "network.h"
#include "optimizer.h"

using namespace ts;

namespace {

const std::vector<float>& slot(const OptimizerSnapshot& s, const std::string& name) {
  for (const auto& sl : s.slots)
    if (sl.name == name) return sl.values;
  FAIL("no slot " << name);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("Adam follows Keras' epsilon-hat update over two steps", "[optim]") {
  OptimizerConfig cfg;  // kind adam, beta1 0.9, beta2 0.999, epsilon 1e-7
  cfg.learning_rate = 0.01;
  auto opt = make_optimizer(cfg, 3);
  REQUIRE(opt->iterations() == 0);

  std::vector<float> p = {0.5f, -1.0f, 2.0f};
  const std::vector<std::vector<float>> grads = {{0.1f, -0.2f, 0.0f}, {-0.3f, 0.05f, 0.4f}};

  // Reference in double, straight from the formula:
  //   lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
  //   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  p -= lr_t m / (sqrt(v) + eps)
  double rp[3] = {0.5, -1.0, 2.0}, rm[3] = {0, 0, 0}, rv[3] = {0, 0, 0};
  const double b1 = 0.9, b2 = 0.999, eps = 1e-7, lr = 0.01;
  for (int t = 1; t <= 2; ++t) {
    const auto& g = grads[t - 1];
    const double lr_t = lr * std::sqrt(1.0 - std::pow(b2, t)) / (1.0 - std::pow(b1, t));
    for (int i = 0; i < 3; ++i) {
      const double gi = double(g[i]);
      rm[i] = b1 * rm[i] + (1.0 - b1) * gi;
      rv[i] = b2 * rv[i] + (1.0 - b2) * gi * gi;
      rp[i] -= lr_t * rm[i] / (std::sqrt(rv[i]) + eps);
    }
    opt->step(p.data(), g.data());
    REQUIRE(opt->iterations() == t);
    const OptimizerSnapshot s = opt->snapshot();
    for (int i = 0; i < 3; ++i) {
      INFO("step " << t << " element " << i);
      CHECK(p[i] == Approx(rp[i]).margin(1e-6));
      CHECK(slot(s, "m")[i] == Approx(rm[i]).epsilon(1e-5).margin(1e-9));
      CHECK(slot(s, "v")[i] == Approx(rv[i]).epsilon(1e-5).margin(1e-12));
    }
    if (t == 1) {
      // Adam's first step moves every weight with a non-zero gradient by about lr against
      // the gradient's sign (m / sqrt(v) = sign(g) after bias correction), zero ones not at all.
      CHECK(p[0] == Approx(0.5 - 0.01).margin(1e-5));
      CHECK(p[1] == Approx(-1.0 + 0.01).margin(1e-5));
      CHECK(p[2] == 2.0f);
    }
  }
  // Written out: step 2, element 0: m = 0.9*0.01 + 0.1*(-0.3) = -0.021,
  // v = 0.999*1e-5 + 0.001*0.09 = 9.999e-5.
  CHECK(rm[0] == Approx(-0.021));
  CHECK(rv[0] == Approx(9.999e-5));
}

TEST_CASE("SGD without momentum is p -= lr * g", "[optim]") {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.learning_rate = 0.1;
  auto opt = make_optimizer(cfg, 3);
  REQUIRE(opt->snapshot().slots.empty());
  std::vector<float> p = {1.0f, -2.0f, 0.5f};
  const std::vector<float> g1 = {0.5f, 0.25f, -1.0f}, g2 = {-1.0f, 0.5f, 2.0f};
  opt->step(p.data(), g1.data());
  // 1 - 0.05, -2 - 0.025, 0.5 + 0.1
  CHECK(p[0] == Approx(0.95).margin(1e-6));
  CHECK(p[1] == Approx(-2.025).margin(1e-6));
  CHECK(p[2] == Approx(0.6).margin(1e-6));
  opt->step(p.data(), g2.data());
  // 0.95 + 0.1, -2.025 - 0.05, 0.6 - 0.2
  CHECK(p[0] == Approx(1.05).margin(1e-6));
  CHECK(p[1] == Approx(-2.075).margin(1e-6));
  CHECK(p[2] == Approx(0.4).margin(1e-6));
  CHECK(opt->iterations() == 2);
}

TEST_CASE("SGD with momentum keeps Keras' velocity = mu * velocity - lr * g", "[optim]") {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.learning_rate = 0.1;
  cfg.momentum = 0.9;
  auto opt = make_optimizer(cfg, 3);
  std::vector<float> p = {1.0f, -2.0f, 0.5f};
  const std::vector<float> g1 = {0.5f, 0.25f, -1.0f}, g2 = {-1.0f, 0.5f, 2.0f},
                           g3 = {0.0f, 0.0f, 0.0f};
  struct Expect {
    double v[3], p[3];
  };
  const Expect expect[3] = {
      // velocity = -0.1 g1;  p = p0 + velocity
      {{-0.05, -0.025, 0.1}, {0.95, -2.025, 0.6}},
      // velocity = 0.9 * (-0.05, -0.025, 0.1) - 0.1 * (-1, 0.5, 2)
      {{0.055, -0.0725, -0.11}, {1.005, -2.0975, 0.49}},
      // zero gradient: velocity = 0.9 * velocity, the weights keep coasting
      {{0.0495, -0.06525, -0.099}, {1.0545, -2.16275, 0.391}},
  };
  const std::vector<float>* grads[3] = {&g1, &g2, &g3};
  for (int t = 0; t < 3; ++t) {
    opt->step(p.data(), grads[t]->data());
    const OptimizerSnapshot s = opt->snapshot();
    REQUIRE(s.slots.size() == 1);
    for (int i = 0; i < 3; ++i) {
      INFO("step " << t + 1 << " element " << i);
      CHECK(slot(s, "velocity")[i] == Approx(expect[t].v[i]).margin(1e-6));
      CHECK(p[i] == Approx(expect[t].p[i]).margin(1e-6));
    }
  }
}

TEST_CASE("Optimizer config errors name the flag and the value", "[optim]") {
  auto invalid = [](auto change) {
    OptimizerConfig c;
    change(c);
    return c;
  };
  REQUIRE_NOTHROW(OptimizerConfig{}.validate());
  REQUIRE_NOTHROW(invalid([](OptimizerConfig& c) { c.beta1 = 0; }).validate());

  const double nan = std::numeric_limits<double>::quiet_NaN();
  using Catch::Contains;
  CHECK_THROWS_WITH(make_optimizer(invalid([](OptimizerConfig& c) { c.kind = "rmsprop"; }), 3),
                    Contains("--optimizer") && Contains("rmsprop"));
  CHECK_THROWS_WITH(invalid([](OptimizerConfig& c) { c.learning_rate = -1; }).validate(),
                    "--lr must be positive, got -1");
  CHECK_THROWS_WITH(invalid([](OptimizerConfig& c) { c.learning_rate = 0; }).validate(),
                    Contains("--lr"));
  CHECK_THROWS_WITH(invalid([&](OptimizerConfig& c) { c.learning_rate = nan; }).validate(),
                    Contains("--lr"));
  CHECK_THROWS_WITH(invalid([](OptimizerConfig& c) { c.beta1 = 1.0; }).validate(),
                    Contains("--beta1") && Contains("got 1"));
  CHECK_THROWS_WITH(invalid([](OptimizerConfig& c) { c.beta2 = -0.5; }).validate(),
                    Contains("--beta2") && Contains("got -0.5"));
  CHECK_THROWS_WITH(invalid([](OptimizerConfig& c) { c.epsilon = 0; }).validate(),
                    Contains("--epsilon"));
  CHECK_THROWS_WITH(invalid([](OptimizerConfig& c) { c.momentum = 1.0; }).validate(),
                    Contains("--momentum"));
  CHECK_THROWS_AS(make_optimizer(invalid([](OptimizerConfig& c) { c.momentum = -0.1; }), 3),
                  std::invalid_argument);
}

TEST_CASE("A restored optimizer continues bit for bit, and refuses state that does not fit",
          "[optim]") {
  OptimizerConfig cfg;
  const size_t n = 1000;
  auto a = make_optimizer(cfg, n);
  std::vector<float> pa(n), g(n);
  for (size_t i = 0; i < n; ++i) pa[i] = float(std::sin(double(i)));
  auto grad = [&](int t) {
    for (size_t i = 0; i < n; ++i) g[i] = float(std::cos(double(i * (t + 3))));
  };
  for (int t = 0; t < 3; ++t) {
    grad(t);
    a->step(pa.data(), g.data());
  }

  auto b = make_optimizer(cfg, n);
  b->restore(a->snapshot());
  CHECK(b->iterations() == 3);
  std::vector<float> pb = pa;
  grad(3);
  a->step(pa.data(), g.data());
  b->step(pb.data(), g.data());
  CHECK(std::memcmp(pa.data(), pb.data(), n * sizeof(float)) == 0);

  OptimizerConfig sgd;
  sgd.kind = "sgd";
  sgd.momentum = 0.5;
  auto c = make_optimizer(sgd, n);
  CHECK_THROWS_WITH(c->restore(a->snapshot()), Catch::Contains("adam"));
  auto d = make_optimizer(cfg, n + 1);
  CHECK_THROWS_AS(d->restore(a->snapshot()), std::invalid_argument);
  CHECK(d->iterations() == 0);  // unchanged by the failed restore
  OptimizerConfig plain = sgd;
  plain.momentum = 0;
  auto e = make_optimizer(plain, n);
  CHECK_THROWS_WITH(e->restore(c->snapshot()), Catch::Contains("velocity"));
}

// --- airbench94's optimizer: PyTorch's SGD(momentum, nesterov=True, weight_decay) in groups ---

namespace {

// A tiny net with every kind of slot: a frozen conv weight with a trained bias (the
// whitening conv), a batch norm (shift trained, running statistics buffers), a dense layer.
NetworkSpec tiny_recipe_net() {
  LayerSpec whiten;
  whiten.kind = LayerKind::kConv;
  whiten.name = "whiten";
  whiten.out_channels = 2;
  whiten.kernel = 2;
  whiten.frozen = true;
  LayerSpec norm;
  norm.kind = LayerKind::kBatchNorm;
  norm.name = "norm";
  norm.bn_group = 2;
  norm.bn_momentum = 0.4f;
  LayerSpec fc;
  fc.kind = LayerKind::kDense;
  fc.name = "fc";
  fc.out_channels = 2;
  return finish_network("tiny", {2, 3, 3}, 2, {whiten, norm, fc});
}

const ParamSpec& param(const NetworkSpec& net, const std::string& name) {
  for (const auto& p : net.params)
    if (p.name == name) return p;
  FAIL("no parameter " << name);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("Nesterov SGD with weight decay follows PyTorch's update, worked out by hand", "[optim]") {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.learning_rate = 0.1;
  cfg.momentum = 0.9;
  cfg.nesterov = true;
  cfg.weight_decay = 0.01;  // lr * wd_g: wd_g = 0.01 / 0.1 = 0.1
  auto opt = make_optimizer(cfg, 3);
  REQUIRE(slot_names(cfg) == std::vector<std::string>{"momentum_buffer"});
  std::vector<float> p = {1.0f, -2.0f, 0.5f};
  const std::vector<float> g1 = {0.5f, 0.25f, -1.0f}, g2 = {-1.0f, 0.5f, 2.0f};
  struct Expect {
    double buf[3], p[3];
  };
  const Expect expect[2] = {
      // g' = g1 + 0.1 p = (0.6, 0.05, -0.95) = buf;  p -= 0.1 (g' + 0.9 buf) = 0.19 g'
      {{0.6, 0.05, -0.95}, {0.886, -2.0095, 0.6805}},
      // g' = g2 + 0.1 p = (-0.9114, 0.29905, 2.06805);  buf = 0.9 buf + g';
      // p -= 0.1 (g' + 0.9 buf)
      {{-0.3714, 0.34405, 1.21305}, {1.010566, -2.0703695, 0.3645205}},
  };
  const std::vector<float>* grads[2] = {&g1, &g2};
  for (int t = 0; t < 2; ++t) {
    opt->step(p.data(), grads[t]->data());
    const OptimizerSnapshot s = opt->snapshot();
    for (int i = 0; i < 3; ++i) {
      INFO("step " << t + 1 << " element " << i);
      CHECK(slot(s, "momentum_buffer")[i] == Approx(expect[t].buf[i]).margin(1e-6));
      CHECK(p[i] == Approx(expect[t].p[i]).margin(1e-6));
    }
  }
}

TEST_CASE("The learning-rate factor scales the step, not the weight decay's product with it", "[optim]") {
  // Plain SGD, zero gradient: p -= (lr * f) * (wd / lr) * p, so p *= 1 - f * wd.
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.learning_rate = 0.5;
  cfg.weight_decay = 0.1;
  auto opt = make_optimizer(cfg, 2);
  std::vector<float> p = {2.0f, -4.0f};
  const std::vector<float> zero = {0.f, 0.f}, one = {1.f, 1.f};
  opt->step(p.data(), zero.data(), 0.2);
  CHECK(p[0] == Approx(2.0 * (1 - 0.2 * 0.1)).margin(1e-6));
  CHECK(p[1] == Approx(-4.0 * (1 - 0.2 * 0.1)).margin(1e-6));
  // And the gradient at lr * f: 1.96 - 0.5 * 0.2 * (1 + 0.2 * 1.96)
  opt->step(p.data(), one.data(), 0.2);
  CHECK(p[0] == Approx(1.96 - 0.1 * (1 + 0.2 * 1.96)).margin(1e-6));
}

TEST_CASE("Groups: batch-norm shifts learn at bias_lr_scale, every group decays alike, frozen weights and buffers stay bit for bit", "[optim]") {
  const NetworkSpec net = tiny_recipe_net();
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.learning_rate = 0.01;
  cfg.momentum = 0.85;
  cfg.nesterov = true;
  cfg.weight_decay = 0.002;
  cfg.bias_lr_scale = 64;
  const std::vector<UpdateRange> ranges = update_ranges(net, cfg);
  // whiten.bias, norm.bias, fc.weight, fc.bias: not whiten.weight (frozen) nor the statistics.
  REQUIRE(ranges.size() == 4);
  CHECK(ranges[0].offset == param(net, "whiten.bias").offset);
  CHECK(ranges[1].offset == param(net, "norm.bias").offset);
  CHECK(ranges[1].lr_scale == 64);
  CHECK(ranges[2].lr_scale == 1);

  auto opt = make_optimizer(cfg, net);
  std::vector<float> p(net.num_params), g(net.num_params, 0.5f);
  for (size_t i = 0; i < p.size(); ++i) p[i] = 0.25f + 0.125f * float(i % 5);
  const std::vector<float> before = p;
  opt->step(p.data(), g.data());
  for (const std::string name : {"whiten.weight", "norm.running_mean", "norm.running_var"}) {
    const ParamSpec& q = param(net, name);
    INFO(name);
    CHECK(std::memcmp(p.data() + q.offset, before.data() + q.offset, q.size * sizeof(float)) == 0);
    for (size_t i = q.offset; i < q.offset + q.size; ++i) REQUIRE(opt->slots()[0].values[i] == 0.f);
  }
  // First Nesterov step: buf = g', p -= L (1 + m) g', g' = g + wd_g p, wd_g = 0.002 / L_g.
  auto expect = [&](size_t i, double lr_g) {
    const double gd = 0.5 + 0.002 / lr_g * double(before[i]);
    return double(before[i]) - lr_g * (1 + 0.85) * gd;
  };
  const ParamSpec& shift = param(net, "norm.bias");
  const ParamSpec& fcw = param(net, "fc.weight");
  for (size_t i = shift.offset; i < shift.offset + shift.size; ++i)
    CHECK(p[i] == Approx(expect(i, 0.01 * 64)).margin(1e-6));
  for (size_t i = fcw.offset; i < fcw.offset + fcw.size; ++i)
    CHECK(p[i] == Approx(expect(i, 0.01)).margin(1e-6));
  // The decay's share of the step is lr_g * wd_g = 0.002 * (1 + m) * p in both groups.
  const size_t a = shift.offset, b = fcw.offset;
  CHECK((double(before[a]) - p[a]) - 0.64 * 1.85 * 0.5 == Approx(0.002 * 1.85 * before[a]).margin(1e-6));
  CHECK((double(before[b]) - p[b]) - 0.01 * 1.85 * 0.5 == Approx(0.002 * 1.85 * before[b]).margin(1e-7));
}

TEST_CASE("An untrainable parameter is skipped entirely: no decay, no momentum, its buffer kept", "[optim]") {
  const NetworkSpec net = tiny_recipe_net();
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.learning_rate = 0.1;
  cfg.momentum = 0.9;
  cfg.nesterov = true;
  cfg.weight_decay = 0.01;
  auto opt = make_optimizer(cfg, net);
  const ParamSpec& bias = param(net, "whiten.bias");
  std::vector<float> p(net.num_params, 1.f), g(net.num_params, 0.5f);
  opt->step(p.data(), g.data());
  const std::vector<float> after_one = p, buf_one = opt->slots()[0].values;
  CHECK(p[bias.offset] != 1.f);  // trained in step 1

  CHECK(set_whitening_bias_for_epoch(*opt, net, /*epoch=*/1, /*whiten_bias_epochs=*/1) == 1);
  opt->step(p.data(), g.data());
  for (size_t i = bias.offset; i < bias.offset + bias.size; ++i) {
    REQUIRE(p[i] == after_one[i]);
    REQUIRE(opt->slots()[0].values[i] == buf_one[i]);
  }
  const ParamSpec& fcb = param(net, "fc.bias");
  CHECK(p[fcb.offset] != after_one[fcb.offset]);  // the others go on

  // Trainable again: it continues from the kept buffer, as PyTorch would.
  CHECK(set_whitening_bias_for_epoch(*opt, net, 0, 1) == 1);
  opt->step(p.data(), g.data());
  const double gd = 0.5 + 0.1 * double(after_one[bias.offset]);
  const double b = 0.9 * double(buf_one[bias.offset]) + gd;
  CHECK(p[bias.offset] == Approx(double(after_one[bias.offset]) - 0.1 * (gd + 0.9 * b)).margin(1e-6));

  CHECK(set_whitening_bias_for_epoch(*opt, net, 5, 0) == 0);  // 0: never frozen
  CHECK_THROWS_WITH(opt->set_trainable(param(net, "whiten.weight"), true),
                    Catch::Contains("'whiten.weight' is not trained"));
  CHECK_THROWS_AS(opt->set_trainable(param(net, "norm.running_var"), true), std::invalid_argument);
}

TEST_CASE("The triangular schedule runs through (0, 0.2), (floor(0.23 T), 1), (T, 0.07)", "[optim]") {
  // T = 100: the peak at 23.
  CHECK(lr_schedule_factor("triangular", 0, 100) == Approx(0.2));
  CHECK(lr_schedule_factor("triangular", 23, 100) == Approx(1.0));
  CHECK(lr_schedule_factor("triangular", 100, 100) == Approx(0.07));
  CHECK(lr_schedule_factor("triangular", 10, 100) == Approx(0.2 + 0.8 * 10 / 23));  // 0.5478
  CHECK(lr_schedule_factor("triangular", 50, 100) == Approx(1 - 0.93 * 27 / 77));    // 0.6739
  CHECK(lr_schedule_factor("triangular", 99, 100) == Approx(1 - 0.93 * 76 / 77));
  // T = 10: floor(2.3) = 2.
  CHECK(lr_schedule_factor("triangular", 1, 10) == Approx(0.6));
  CHECK(lr_schedule_factor("triangular", 2, 10) == Approx(1.0));
  CHECK(lr_schedule_factor("triangular", 6, 10) == Approx(1 - 0.93 * 0.5));
  CHECK(lr_schedule_factor("constant", 7, 10) == 1.0);
  CHECK(lr_schedule_factor("constant", 7, 0) == 1.0);
  CHECK_THROWS_WITH(lr_schedule_factor("cosine", 0, 10), Catch::Contains("--lr-schedule") && Catch::Contains("cosine"));
  CHECK_THROWS_WITH(lr_schedule_factor("triangular", 0, 0), Catch::Contains("total steps"));
}

TEST_CASE("The recipe's hyper-parameters per 1024 examples turn into PyTorch's", "[optim]") {
  // kilostep = 1024 (1 + 1 / 0.15) = 7850.67;  11.5 / 7850.67 = 1.5 / 1024;
  // 0.0153 * 1024 / 7850.67 = 0.0459 / 23.
  const SgdHyper h = recipe_sgd(11.5, 0.0153, 0.85, 1024);
  CHECK(h.learning_rate == Approx(0.00146484375).epsilon(1e-12));
  CHECK(h.weight_decay == Approx(0.0019956521739).epsilon(1e-10));
  CHECK(recipe_sgd(11.5, 0.0153, 0.85, 512).weight_decay == Approx(0.0019956521739 / 2).epsilon(1e-10));
  // momentum 0: kilostep 2048.
  CHECK(recipe_sgd(2.0, 0.01, 0.0, 256).learning_rate == Approx(2.0 / 2048));
  CHECK(recipe_sgd(2.0, 0.01, 0.0, 256).weight_decay == Approx(0.01 * 256 / 2048));
}

TEST_CASE("The recipe's optimizer settings are checked with errors naming the flag", "[optim]") {
  auto sgd = [](auto change) {
    OptimizerConfig c;
    c.kind = "sgd";
    c.momentum = 0.85;
    change(c);
    return c;
  };
  using Catch::Contains;
  REQUIRE_NOTHROW(sgd([](OptimizerConfig& c) {
                    c.nesterov = true;
                    c.weight_decay = 0.002;
                    c.bias_lr_scale = 64;
                    c.lr_schedule = "triangular";
                    c.lookahead_every = 5;
                  }).validate());
  CHECK_THROWS_WITH(sgd([](OptimizerConfig& c) { c.nesterov = true, c.momentum = 0; }).validate(),
                    Contains("--nesterov") && Contains("--momentum 0"));
  CHECK_THROWS_WITH(sgd([](OptimizerConfig& c) { c.nesterov = true, c.kind = "adam"; }).validate(),
                    Contains("--nesterov") && Contains("adam"));
  CHECK_THROWS_WITH(sgd([](OptimizerConfig& c) { c.weight_decay = -1; }).validate(),
                    "--weight-decay must be 0 or more, got -1");
  CHECK_THROWS_WITH(sgd([](OptimizerConfig& c) { c.weight_decay = 0.1, c.kind = "adam"; }).validate(),
                    Contains("--weight-decay") && Contains("adam"));
  CHECK_THROWS_WITH(sgd([](OptimizerConfig& c) { c.bias_lr_scale = 0; }).validate(),
                    "--bias-lr-scale must be positive, got 0");
  CHECK_THROWS_WITH(sgd([](OptimizerConfig& c) { c.lr_schedule = "linear"; }).validate(),
                    Contains("--lr-schedule") && Contains("'linear'"));
  CHECK_THROWS_WITH(sgd([](OptimizerConfig& c) { c.lookahead_every = -5; }).validate(),
                    Contains("--lookahead-every") && Contains("-5"));
}

TEST_CASE("The older optimizers give the same bits built from the network as from a flat size", "[optim]") {
  const NetworkSpec net = build_network("seed_cnn");
  for (const std::string kind : {"adam", "sgd"}) {
    OptimizerConfig cfg;
    cfg.kind = kind;
    if (kind == "sgd") cfg.momentum = 0.9;
    auto flat = make_optimizer(cfg, net.num_params);
    auto grouped = make_optimizer(cfg, net);
    std::vector<float> pa(net.num_params), g(net.num_params);
    for (size_t i = 0; i < pa.size(); ++i) pa[i] = float(std::sin(double(i)));
    std::vector<float> pb = pa;
    for (int t = 0; t < 3; ++t) {
      for (size_t i = 0; i < g.size(); ++i) g[i] = float(std::cos(double(i * (t + 2))));
      flat->step(pa.data(), g.data());
      grouped->step(pb.data(), g.data());
    }
    INFO(kind);
    CHECK(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)) == 0);
    CHECK(flat->slots()[0].values == grouped->slots()[0].values);
  }
}
