// Optimizers against values worked out by hand from Keras' update rules (see optimizer.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

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
