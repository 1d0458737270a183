// The reference implementation checked against itself the only way that proves anything:
// every backward against central finite differences of its forward (double precision), plus
// a few forward values worked out by hand so forward and backward cannot be wrong together.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "network.h"
#include "random.h"
#include "reference/reference_layers.h"
#include "reference/reference_model.h"

namespace {

using ts::LayerKind;
using ts::LayerSpec;
using ts::Rng;

std::vector<double> random_vector(Rng& rng, size_t count, double lo, double hi) {
  std::vector<double> v(count);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

// Values in [-1, 1] that are pairwise at least `gap` apart (a shuffled grid plus a little
// jitter), so a finite-difference step can never reorder them: no pooling ties, no switching.
std::vector<double> distinct_values(Rng& rng, size_t count, double gap) {
  std::vector<double> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = -1.0 + 2.0 * double(i) / double(count);
  for (size_t i = count; i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  for (auto& x : v) x += 0.25 * gap * rng.uniform();
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

// Relative error with a floor, so exact zeros on both sides compare equal.
double rel_error(double a, double b, double floor) {
  return std::fabs(a - b) / std::max(floor, std::fabs(a) + std::fabs(b));
}

struct GradCheck {
  double max_error = 0;
  size_t worst = 0;
  double analytic = 0, numeric = 0;
  size_t checked = 0;
};

// Central differences of objective() with respect to x[i] for each i in `which` (all of x when
// empty), compared with analytic[i]. x is restored afterwards.
GradCheck finite_difference_check(std::vector<double>& x, const std::vector<double>& analytic,
                                  const std::function<double()>& objective, double h,
                                  double floor, std::vector<size_t> which = {}) {
  REQUIRE(analytic.size() == x.size());
  if (which.empty()) {
    which.resize(x.size());
    std::iota(which.begin(), which.end(), size_t(0));
  }
  GradCheck r;
  for (size_t i : which) {
    const double saved = x[i];
    x[i] = saved + h;
    const double plus = objective();
    x[i] = saved - h;
    const double minus = objective();
    x[i] = saved;
    const double numeric = (plus - minus) / (2 * h);
    const double err = rel_error(analytic[i], numeric, floor);
    if (err >= r.max_error) {
      r.max_error = err;
      r.worst = i;
      r.analytic = analytic[i];
      r.numeric = numeric;
    }
    ++r.checked;
  }
  return r;
}

constexpr double kStep = 1e-5;      // FD step for the smooth, kink-free layer checks
constexpr double kFloor = 1e-6;     // relative-error floor
constexpr double kTolerance = 1e-5;

#define REQUIRE_GRADIENT(label, check)                                                      \
  do {                                                                                      \
    const GradCheck& c_ = (check);                                                          \
    INFO(label << ": worst element " << c_.worst << " analytic " << c_.analytic           \
               << " numeric " << c_.numeric << " (" << c_.checked << " checked)");         \
    CHECK(c_.checked > 0);                                                                  \
    CHECK(c_.max_error < kTolerance);                                                       \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Layers, each against finite differences of L = <g, forward(...)> with random g.

struct ConvCase {
  int C, H, W, OC, K, stride, pad_begin, pad_end;
};

TEST_CASE("conv2d backward matches finite differences for every input, weight and bias",
          "[reference]") {
  const ConvCase cases[] = {
      {3, 6, 6, 4, 3, 1, 1, 1},  // SAME-like
      {3, 7, 7, 4, 3, 2, 0, 1},  // stride 2, padding only at the end
      {4, 5, 7, 3, 3, 2, 1, 0},  // non-square map, padding only at the start
      {3, 5, 5, 5, 3, 1, 0, 0},  // valid
  };
  Rng rng(11);
  for (const ConvCase& cc : cases) {
    const int N = 2;
    const int OH = ts::ref::window_out_size(cc.H, cc.K, cc.stride, cc.pad_begin, cc.pad_end);
    const int OW = ts::ref::window_out_size(cc.W, cc.K, cc.stride, cc.pad_begin, cc.pad_end);
    INFO("conv C=" << cc.C << " " << cc.H << "x" << cc.W << " OC=" << cc.OC << " stride "
                   << cc.stride << " pad " << cc.pad_begin << "/" << cc.pad_end);
    auto in = random_vector(rng, size_t(N) * cc.C * cc.H * cc.W, -1, 1);
    auto w = random_vector(rng, size_t(cc.OC) * cc.C * cc.K * cc.K, -1, 1);
    auto b = random_vector(rng, size_t(cc.OC), -1, 1);
    const auto g = random_vector(rng, size_t(N) * cc.OC * OH * OW, -1, 1);
    auto objective = [&] {
      std::vector<double> out(g.size());
      ts::ref::conv2d_forward(out.data(), in.data(), w.data(), b.data(), N, cc.C, cc.H, cc.W,
                              cc.OC, cc.K, cc.stride, cc.pad_begin, cc.pad_end);
      return dot(g, out);
    };
    std::vector<double> din(in.size()), dw(w.size()), db(b.size());
    ts::ref::conv2d_backward(din.data(), dw.data(), db.data(), g.data(), in.data(), w.data(), N,
                             cc.C, cc.H, cc.W, cc.OC, cc.K, cc.stride, cc.pad_begin, cc.pad_end);
    REQUIRE_GRADIENT("dinput", finite_difference_check(in, din, objective, kStep, kFloor));
    REQUIRE_GRADIENT("dweight", finite_difference_check(w, dw, objective, kStep, kFloor));
    REQUIRE_GRADIENT("dbias", finite_difference_check(b, db, objective, kStep, kFloor));

    // A null dinput must leave the parameter gradients as they were.
    std::vector<double> dw2(w.size()), db2(b.size());
    ts::ref::conv2d_backward(nullptr, dw2.data(), db2.data(), g.data(), in.data(), w.data(), N,
                             cc.C, cc.H, cc.W, cc.OC, cc.K, cc.stride, cc.pad_begin, cc.pad_end);
    CHECK(dw2 == dw);
    CHECK(db2 == db);
  }
}

TEST_CASE("relu backward matches finite differences away from the kink", "[reference]") {
  Rng rng(12);
  std::vector<double> in = random_vector(rng, 2 * 4 * 5 * 5, -1, 1);
  for (auto& x : in)  // keep every input more than 1000 steps away from 0
    if (std::fabs(x) < 0.01) x = x < 0 ? -0.5 : 0.5;
  const auto g = random_vector(rng, in.size(), -1, 1);
  auto objective = [&] {
    std::vector<double> out(in.size());
    ts::ref::relu_forward(out.data(), in.data(), int64_t(in.size()));
    return dot(g, out);
  };
  std::vector<double> out(in.size()), din(in.size());
  ts::ref::relu_forward(out.data(), in.data(), int64_t(in.size()));
  ts::ref::relu_backward(din.data(), g.data(), out.data(), int64_t(in.size()));
  const size_t negatives = size_t(std::count_if(in.begin(), in.end(), [](double x) { return x < 0; }));
  REQUIRE(negatives > 10);  // both sides of the kink are exercised
  REQUIRE(negatives < in.size() - 10);
  REQUIRE_GRADIENT("relu dinput", finite_difference_check(in, din, objective, kStep, kFloor));
}

struct PoolCase {
  int H, W, K, stride, pad_begin, pad_end;
};

TEST_CASE("maxpool backward matches finite differences, padded windows included",
          "[reference]") {
  const PoolCase cases[] = {
      {6, 6, 3, 2, 0, 1},  // TF SAME on an even map: the last window reaches into padding
      {7, 7, 3, 2, 0, 0},  // valid, overlapping windows
      {5, 7, 3, 2, 1, 1},  // padding on both sides, non-square
      {6, 6, 2, 2, 0, 0},  // seed_cnn's 2x2 / 2
  };
  Rng rng(13);
  for (const PoolCase& pc : cases) {
    const int N = 2, C = 3;
    const int OH = ts::ref::window_out_size(pc.H, pc.K, pc.stride, pc.pad_begin, pc.pad_end);
    const int OW = ts::ref::window_out_size(pc.W, pc.K, pc.stride, pc.pad_begin, pc.pad_end);
    INFO("maxpool " << pc.H << "x" << pc.W << " k" << pc.K << " s" << pc.stride << " pad "
                    << pc.pad_begin << "/" << pc.pad_end);
    const size_t count = size_t(N) * C * pc.H * pc.W;
    auto in = distinct_values(rng, count, 2.0 / double(count));
    const auto g = random_vector(rng, size_t(N) * C * OH * OW, -1, 1);
    std::vector<int64_t> argmax(g.size());
    auto objective = [&] {
      std::vector<double> out(g.size());
      ts::ref::maxpool_forward(out.data(), argmax.data(), in.data(), N, C, pc.H, pc.W, pc.K,
                               pc.stride, pc.pad_begin, pc.pad_end);
      return dot(g, out);
    };
    objective();  // fills argmax at the unperturbed input
    std::vector<double> din(in.size());
    ts::ref::maxpool_backward(din.data(), g.data(), argmax.data(), N, C, OH, OW);
    REQUIRE_GRADIENT("maxpool dinput", finite_difference_check(in, din, objective, kStep, kFloor));
  }
}

TEST_CASE("maxpool gives ties to the first maximum in scan order and never picks padding",
          "[reference]") {
  // One 3x3 window over a 2x2 map padded by 1 at the end: all real values negative, so a
  // padded zero would win if padding were a candidate.
  const std::vector<double> in = {-3.0, -1.0, -1.0, -2.0};
  double out = 0;
  int64_t argmax = -7;
  ts::ref::maxpool_forward(&out, &argmax, in.data(), 1, 1, 2, 2, 3, 2, 0, 1);
  CHECK(out == -1.0);
  CHECK(argmax == 1);  // (0,1) comes before (1,0) in row-major order
  std::vector<double> din(4, 0.0);
  const double dout = 2.5;
  ts::ref::maxpool_backward(din.data(), &dout, &argmax, 1, 1, 1, 1);
  CHECK(din == std::vector<double>{0.0, 2.5, 0.0, 0.0});

  // Padding on both sides, 3x3 / 1: each of the four windows holds the whole map plus padding.
  std::vector<double> out4(4);
  std::vector<int64_t> argmax4(4);
  ts::ref::maxpool_forward(out4.data(), argmax4.data(), in.data(), 1, 1, 2, 2, 3, 1, 1, 1);
  CHECK(out4 == std::vector<double>(4, -1.0));
  CHECK(argmax4 == std::vector<int64_t>(4, 1));
}

TEST_CASE("global average pool backward matches finite differences", "[reference]") {
  const int N = 2, C = 4, H = 5, W = 5;
  Rng rng(14);
  auto in = random_vector(rng, size_t(N) * C * H * W, -1, 1);
  const auto g = random_vector(rng, size_t(N) * C, -1, 1);
  auto objective = [&] {
    std::vector<double> out(g.size());
    ts::ref::global_avgpool_forward(out.data(), in.data(), N, C, H, W);
    return dot(g, out);
  };
  std::vector<double> din(in.size());
  ts::ref::global_avgpool_backward(din.data(), g.data(), N, C, H, W);
  REQUIRE_GRADIENT("gap dinput", finite_difference_check(in, din, objective, kStep, kFloor));
}

struct LrnCase {
  const char* what;
  int C, size;
  double alpha, beta, k;
  bool normalization_matters;  // the cross-channel term must be a visible part of dinput
};

TEST_CASE("lrn backward matches finite differences, cross-channel term included",
          "[reference]") {
  const LrnCase cases[] = {
      // tf_tutorial_cnn's norm layers: depth_radius 4 -> size 9, alpha_onednn = 0.001/9 * 9
      {"tf_tutorial size 9", 5, 9, 0.001, 0.75, 1.0, false},
      {"tf_tutorial parameters, size 5", 5, 5, 0.001, 0.75, 1.0, false},
      {"large alpha, size 5", 5, 5, 4.0, 0.75, 1.0, true},
      {"large alpha, size 9", 4, 9, 3.0, 0.75, 2.0, true},
      {"large alpha, size 3, beta 1.5", 5, 3, 2.0, 1.5, 0.5, true},
  };
  Rng rng(15);
  for (const LrnCase& lc : cases) {
    INFO("lrn " << lc.what);
    const int N = 2, H = 5, W = 6;
    auto in = random_vector(rng, size_t(N) * lc.C * H * W, -2, 2);
    const auto g = random_vector(rng, in.size(), -1, 1);
    auto objective = [&] {
      std::vector<double> out(in.size()), denom(in.size());
      ts::ref::lrn_forward(out.data(), denom.data(), in.data(), N, lc.C, H, W, lc.size, lc.alpha,
                           lc.beta, lc.k);
      return dot(g, out);
    };
    std::vector<double> out(in.size()), denom(in.size()), din(in.size());
    ts::ref::lrn_forward(out.data(), denom.data(), in.data(), N, lc.C, H, W, lc.size, lc.alpha,
                         lc.beta, lc.k);
    ts::ref::lrn_backward(din.data(), g.data(), in.data(), denom.data(), N, lc.C, H, W, lc.size,
                          lc.alpha, lc.beta);
    REQUIRE_GRADIENT("lrn dinput", finite_difference_check(in, din, objective, kStep, kFloor));

    if (lc.normalization_matters) {
      // Dropping the cross-channel term (treating s as a constant) must change dinput a lot,
      // or this case would not test that term at all.
      double diff = 0, norm = 0;
      for (size_t i = 0; i < in.size(); ++i) {
        const double diagonal_only = g[i] * std::pow(denom[i], -lc.beta);
        diff += (din[i] - diagonal_only) * (din[i] - diagonal_only);
        norm += din[i] * din[i];
      }
      CHECK(std::sqrt(diff / norm) > 0.2);
    }
  }
}

TEST_CASE("dense backward matches finite differences, with and without relu", "[reference]") {
  const int N = 2, I = 3 * 2 * 2, O = 5;
  Rng rng(16);
  for (bool relu : {false, true}) {
    INFO("dense relu=" << relu);
    auto in = random_vector(rng, size_t(N) * I, -1, 1);
    auto w = random_vector(rng, size_t(O) * I, -1, 1);
    auto b = random_vector(rng, size_t(O), -1, 1);
    const auto g = random_vector(rng, size_t(N) * O, -1, 1);
    auto forward = [&](std::vector<double>& out) {
      ts::ref::dense_forward(out.data(), in.data(), w.data(), b.data(), N, I, O);
    };
    std::vector<double> pre(g.size());
    forward(pre);
    std::vector<double> dpre = g;
    if (relu) {
      // Away from the kink, so the finite difference sees one side of it only.
      for (double z : pre) REQUIRE(std::fabs(z) > 1e-3);
      REQUIRE(std::count_if(pre.begin(), pre.end(), [](double z) { return z < 0; }) > 0);
      std::vector<double> out(pre.size());
      ts::ref::relu_forward(out.data(), pre.data(), int64_t(pre.size()));
      std::fill(dpre.begin(), dpre.end(), 0.0);
      ts::ref::relu_backward(dpre.data(), g.data(), out.data(), int64_t(out.size()));
    }
    auto objective = [&] {
      std::vector<double> out(g.size());
      forward(out);
      if (relu) ts::ref::relu_forward(out.data(), out.data(), int64_t(out.size()));
      return dot(g, out);
    };
    std::vector<double> din(in.size()), dw(w.size()), db(b.size());
    ts::ref::dense_backward(din.data(), dw.data(), db.data(), dpre.data(), in.data(), w.data(), N,
                            I, O);
    REQUIRE_GRADIENT("dense dinput", finite_difference_check(in, din, objective, kStep, kFloor));
    REQUIRE_GRADIENT("dense dweight", finite_difference_check(w, dw, objective, kStep, kFloor));
    REQUIRE_GRADIENT("dense dbias", finite_difference_check(b, db, objective, kStep, kFloor));
  }
}

TEST_CASE("softmax cross-entropy backward is the gradient of loss_scale * sum of losses",
          "[reference]") {
  const int N = 3, K = 7;
  const double loss_scale = 0.37;
  const std::vector<int32_t> labels = {2, 0, 6};
  Rng rng(17);
  auto logits = random_vector(rng, size_t(N) * K, -3, 3);
  auto objective = [&] {
    std::vector<double> losses(N), probs(logits.size());
    ts::ref::softmax_cross_entropy_forward(losses.data(), probs.data(), logits.data(),
                                           labels.data(), N, K);
    return loss_scale * std::accumulate(losses.begin(), losses.end(), 0.0);
  };
  std::vector<double> losses(N), probs(logits.size()), dlogits(logits.size());
  ts::ref::softmax_cross_entropy_forward(losses.data(), probs.data(), logits.data(), labels.data(),
                                         N, K);
  ts::ref::softmax_cross_entropy_backward(dlogits.data(), probs.data(), labels.data(), N, K,
                                          loss_scale);
  REQUIRE_GRADIENT("dlogits", finite_difference_check(logits, dlogits, objective, kStep, kFloor));
}

// ---------------------------------------------------------------------------------------------
// Forward values worked out by hand.

TEST_CASE("conv2d forward is a cross-correlation with zero padding, by hand", "[reference]") {
  // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2,3],[4,5,6],[7,8,9]], bias 0.5
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<double> w = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const double bias = 0.5;
  double valid = 0;
  ts::ref::conv2d_forward(&valid, x.data(), w.data(), &bias, 1, 1, 3, 3, 1, 3, 1, 0, 0);
  CHECK(valid == 285.5);  // 1+4+9+...+81 = 285, no kernel flip (a flip would give 165.5)

  // pad 1 / stride 2: a 2x2 output; the top-left window sees x[0..1][0..1] through w[1..2][1..2]
  std::vector<double> same(4);
  ts::ref::conv2d_forward(same.data(), x.data(), w.data(), &bias, 1, 1, 3, 3, 1, 3, 2, 1, 1);
  CHECK(same[0] == 5 * 1 + 6 * 2 + 8 * 4 + 9 * 5 + 0.5);  // 94.5
  CHECK(same[3] == 1 * 5 + 2 * 6 + 4 * 8 + 5 * 9 + 0.5);  // bottom-right: w[0..1][0..1]
}

TEST_CASE("lrn forward follows oneDNN's alpha / size convention, by hand", "[reference]") {
  // One channel: s = k + alpha/size * x^2 = 1 + 5/5 * 4 = 5, y = 2 / sqrt(5)
  double x = 2.0, y = 0, s = 0;
  ts::ref::lrn_forward(&y, &s, &x, 1, 1, 1, 1, 5, 5.0, 0.5, 1.0);
  CHECK(s == Approx(5.0).epsilon(1e-15));
  CHECK(y == Approx(2.0 / std::sqrt(5.0)).epsilon(1e-15));

  // Three channels [1,2,3], size 3, alpha 3 (alpha/size = 1), beta 1, k 1; windows clipped:
  // c0: 1 + 1 + 4 = 6, c1: 1 + 1 + 4 + 9 = 15, c2: 1 + 4 + 9 = 14
  const std::vector<double> in = {1, 2, 3};
  std::vector<double> out(3), denom(3);
  ts::ref::lrn_forward(out.data(), denom.data(), in.data(), 1, 3, 1, 1, 3, 3.0, 1.0, 1.0);
  CHECK(out[0] == Approx(1.0 / 6.0).epsilon(1e-14));
  CHECK(out[1] == Approx(2.0 / 15.0).epsilon(1e-14));
  CHECK(out[2] == Approx(3.0 / 14.0).epsilon(1e-14));
}

TEST_CASE("maxpool SAME 3x3 / 2 takes 32 to 16 and its last window ignores the padding",
          "[reference]") {
  LayerSpec pool;
  pool.kind = LayerKind::kMaxPool;
  pool.name = "pool";
  pool.kernel = 3;
  pool.stride = 2;
  pool.pad_begin = pool.pad_end = -1;  // TF SAME
  LayerSpec fc;
  fc.kind = LayerKind::kDense;
  fc.name = "fc";
  fc.out_channels = 2;
  const ts::NetworkSpec net = ts::finish_network("same_pool", {1, 32, 32}, 2, {pool, fc});
  const LayerSpec& p = net.layers[0];
  REQUIRE(p.out == (ts::Shape3{1, 16, 16}));
  CHECK(p.pad_begin == 0);
  CHECK(p.pad_end == 1);

  // A map that falls left to right and is negative: if padding won, the last column would be 0.
  std::vector<double> in(32 * 32);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) in[size_t(y) * 32 + x] = -1.0 - x - 0.001 * y;
  std::vector<double> out(16 * 16);
  std::vector<int64_t> argmax(out.size());
  ts::ref::maxpool_forward(out.data(), argmax.data(), in.data(), 1, 1, 32, 32, p.kernel, p.stride,
                           p.pad_begin, p.pad_end);
  CHECK(out[0] == -1.0);  // window rows 0..2, cols 0..2: max at (0,0)
  CHECK(out[15] == -31.0);  // cols 30..31 (+ padding), row 0
  CHECK(out[16 * 15 + 15] == Approx(-31.03).epsilon(1e-15));  // rows/cols 30..31: max at (30,30)
  CHECK(argmax[16 * 15 + 15] == 30 * 32 + 30);
}

TEST_CASE("softmax cross-entropy forward by hand", "[reference]") {
  // One sample, five classes, label 4: loss = log(1 + 1 + e + e^2 + e^3) - 3
  const std::vector<double> logits = {0, 0, 1, 2, 3};
  std::vector<double> probs(5);
  double loss = 0;
  const int32_t label = 4;
  ts::ref::softmax_cross_entropy_forward(&loss, probs.data(), logits.data(), &label, 1, 5);
  const double z = 2 + std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(loss == Approx(std::log(z) - 3.0).epsilon(1e-14));
  CHECK(probs[0] == Approx(1.0 / z).epsilon(1e-14));
  CHECK(probs[4] == Approx(std::exp(3.0) / z).epsilon(1e-14));
}

// ---------------------------------------------------------------------------------------------
// The whole-network step.

LayerSpec conv_layer(const char* name, int out, int k, int stride, int pad_begin, int pad_end,
                     bool relu) {
  LayerSpec l;
  l.kind = LayerKind::kConv;
  l.name = name;
  l.out_channels = out;
  l.kernel = k;
  l.stride = stride;
  l.pad_begin = pad_begin;
  l.pad_end = pad_end;
  l.relu = relu;
  return l;
}

LayerSpec dense_layer(const char* name, int units, bool relu) {
  LayerSpec l;
  l.kind = LayerKind::kDense;
  l.name = name;
  l.out_channels = units;
  l.relu = relu;
  return l;
}

TEST_CASE("reference step reads conv weights as [out, in, kh, kw] and biases per filter",
          "[reference]") {
  // conv 2->2, kernel 2, on a 2x2 input: one output pixel per filter = the two logits.
  const ts::NetworkSpec net =
      ts::finish_network("layout", {2, 2, 2}, 2, {conv_layer("c", 2, 2, 1, 0, 0, false)});
  std::vector<double> params(net.num_params);
  REQUIRE(params.size() == 2 * 2 * 2 * 2 + 2);
  for (size_t j = 0; j < 16; ++j) params[j] = double(j + 1);
  params[16] = 0.5;
  params[17] = -0.5;
  // Input: channel 0 has 0.5 at (0,1), channel 1 has 0.25 at (1,0), zeros elsewhere.
  const std::vector<double> image = {0, 0.5, 0, 0, /**/ 0, 0, 0.25, 0};
  const auto r = ts::reference_train_step(net, params, image, {1}, 1, 1.0);
  // [out,in,kh,kw]: filter o reads w[o*8 + 0*4 + 0*2 + 1] and w[o*8 + 1*4 + 1*2 + 0]
  // ([out,kh,kw,in] would read w[o*8 + 2] and w[o*8 + 5] instead)
  REQUIRE(r.logits.size() == 2);
  CHECK(r.logits[0] == 0.5 * 2.0 + 0.25 * 7.0 + 0.5);    // 3.25
  CHECK(r.logits[1] == 0.5 * 10.0 + 0.25 * 15.0 - 0.5);  // 8.25
  CHECK(r.correct == 1);
  const double p0 = 1.0 / (1.0 + std::exp(5.0));  // softmax of [3.25, 8.25], class 0
  CHECK(r.loss_sum == Approx(std::log1p(std::exp(-5.0))).epsilon(1e-12));
  // d loss / d w[o, 0, 0, 1] = (p_o - y_o) * 0.5, d loss / d b_o = p_o - y_o
  CHECK(r.grad[1] == Approx(0.5 * p0).epsilon(1e-12));
  CHECK(r.grad[8 + 1] == Approx(-0.5 * p0).epsilon(1e-12));
  CHECK(r.grad[8 + 6] == Approx(-0.25 * p0).epsilon(1e-12));
  CHECK(r.grad[16] == Approx(p0).epsilon(1e-12));
  CHECK(r.grad[17] == Approx(-p0).epsilon(1e-12));
  CHECK(r.grad[0] == 0.0);  // the input under w[0,0,0,0] is 0
}

TEST_CASE("reference step flattens [C,H,W] into a dense layer in C,H,W order, weights [out, in]",
          "[reference]") {
  const ts::NetworkSpec net = ts::finish_network("flat", {2, 2, 3}, 3, {dense_layer("fc", 3, false)});
  std::vector<double> params(net.num_params, 0.0);
  REQUIRE(params.size() == 3 * 12 + 3);
  params[0 * 12 + 7] = 1.0;  // logit 0 reads input (c=1, h=0, w=1) = 1*6 + 0*3 + 1
  params[2 * 12 + 4] = 2.0;  // logit 2 reads input (c=0, h=1, w=1) = 4
  std::vector<double> image(12);
  for (size_t i = 0; i < 12; ++i) image[i] = 10.0 * double(i);
  const auto r = ts::reference_train_step(net, params, image, {0}, 1, 2.0);
  CHECK(r.logits == std::vector<double>{70.0, 0.0, 80.0});
  CHECK(r.correct == 0);  // logit 2 is largest, label 0
  // grad of dense weight [o, i] = loss_scale * (p_o - y_o) * x_i
  const double z = std::exp(70.0 - 80.0) + std::exp(0.0 - 80.0) + 1.0;
  const double p0 = std::exp(-10.0) / z;
  CHECK(r.grad[0 * 12 + 5] == Approx(2.0 * (p0 - 1.0) * 50.0).epsilon(1e-12));
  CHECK(r.grad[2 * 12 + 5] == Approx(2.0 * (1.0 / z) * 50.0).epsilon(1e-12));
  CHECK(r.grad[36 + 2] == Approx(2.0 * (1.0 / z)).epsilon(1e-12));
}

// A whole-network loss of ~1 differenced with h = 1e-6 carries ~1e-9 of rounding noise, so
// gradients below ~1e-3 are compared to ~1e-8 absolute rather than 1e-5 relative.
constexpr double kNetworkFloor = 1e-3;

// FD of loss_scale * loss_sum against the step's gradient, for the given parameter indices.
GradCheck check_network_gradient(const ts::NetworkSpec& net, std::vector<double>& params,
                                 const std::vector<double>& images,
                                 const std::vector<int32_t>& labels, int n, double loss_scale,
                                 double h, std::vector<size_t> which = {}) {
  const auto step = ts::reference_train_step(net, params, images, labels, n, loss_scale);
  REQUIRE(step.grad.size() == net.num_params);
  auto objective = [&] {
    return loss_scale * ts::reference_forward(net, params, images, labels, n).loss_sum;
  };
  return finite_difference_check(params, step.grad, objective, h, kNetworkFloor,
                                 std::move(which));
}

std::vector<double> init_params(const ts::NetworkSpec& net, uint64_t seed) {
  std::vector<float> p(net.num_params);
  ts::glorot_uniform_init(net, seed, p.data());
  std::vector<double> d(p.begin(), p.end());
  Rng rng(seed + 1);
  for (const auto& ps : net.params)  // non-zero biases, so a bias bug cannot hide behind zeros
    if (ps.is_bias)
      for (size_t j = 0; j < ps.size; ++j) d[ps.offset + j] = 0.2 * (2 * rng.uniform() - 1);
  return d;
}

TEST_CASE("reference step gradient matches finite differences: conv, SAME pool, lrn, gap, dense",
          "[reference]") {
  LayerSpec pool;
  pool.kind = LayerKind::kMaxPool;
  pool.name = "pool";
  pool.kernel = 3;
  pool.stride = 2;
  pool.pad_begin = pool.pad_end = -1;
  LayerSpec lrn;
  lrn.kind = LayerKind::kLrn;
  lrn.name = "norm";
  lrn.lrn_size = 3;
  lrn.lrn_alpha = 2.0f;  // large, so the normalization shapes the gradient
  lrn.lrn_beta = 0.75f;
  lrn.lrn_k = 1.0f;
  LayerSpec gap;
  gap.kind = LayerKind::kGlobalAvgPool;
  gap.name = "gap";
  const ts::NetworkSpec net = ts::finish_network(
      "small", {3, 8, 8}, 4,
      {conv_layer("conv1", 4, 3, 1, 1, 1, true), pool, lrn, conv_layer("conv2", 5, 3, 2, 0, 1, true),
       gap, dense_layer("fc", 4, false)});
  REQUIRE(net.layers[1].out == (ts::Shape3{4, 4, 4}));
  const int n = 2;
  Rng rng(21);
  auto params = init_params(net, 22);
  const auto images = random_vector(rng, size_t(n) * net.input.size(), -1, 1);
  const std::vector<int32_t> labels = {3, 1};
  REQUIRE_GRADIENT("small net, all parameters",
                   check_network_gradient(net, params, images, labels, n, 0.5, 1e-6));
}

TEST_CASE("reference step gradient matches finite differences: dense, relu, dense",
          "[reference]") {
  const ts::NetworkSpec net = ts::finish_network(
      "mlp", {2, 3, 3}, 3, {dense_layer("fc1", 6, true), dense_layer("fc2", 3, false)});
  const int n = 3;
  Rng rng(31);
  auto params = init_params(net, 32);
  const auto images = random_vector(rng, size_t(n) * net.input.size(), -1, 1);
  const std::vector<int32_t> labels = {0, 2, 1};
  REQUIRE_GRADIENT("mlp, all parameters",
                   check_network_gradient(net, params, images, labels, n, 1.0 / n, 1e-6));
}

TEST_CASE("reference step gradient matches finite differences on seed_cnn", "[reference]") {
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  const int n = 2;
  Rng rng(41);
  auto params = init_params(net, 42);
  const auto images = random_vector(rng, size_t(n) * net.input.size(), 0, 1);
  const std::vector<int32_t> labels = {7, 2};
  std::vector<size_t> which;
  for (const auto& ps : net.params)
    if (ps.is_bias)
      for (size_t j = 0; j < ps.size; ++j) which.push_back(ps.offset + j);
  for (int i = 0; i < 200; ++i) which.push_back(size_t(rng.below(net.num_params)));
  REQUIRE_GRADIENT("seed_cnn, all biases and 200 random parameters",
                   check_network_gradient(net, params, images, labels, n, 1.0 / n, 1e-6, which));
}

TEST_CASE("reference step gradient matches finite differences on tf_tutorial_cnn",
          "[reference]") {
  // The big network is slow in plain double loops: one sample, a few parameters per tensor.
  const ts::NetworkSpec net = ts::build_network("tf_tutorial_cnn");
  const int n = 1;
  Rng rng(61);
  auto params = init_params(net, 62);
  const auto images = random_vector(rng, size_t(n) * net.input.size(), 0, 1);
  const std::vector<int32_t> labels = {4};
  std::vector<size_t> which;
  for (const auto& ps : net.params)
    for (int i = 0; i < 3; ++i) which.push_back(ps.offset + size_t(rng.below(ps.size)));
  REQUIRE_GRADIENT("tf_tutorial_cnn, 3 random parameters per tensor",
                   check_network_gradient(net, params, images, labels, n, 1.0, 1e-6, which));
}

TEST_CASE("reference step float overload equals the double one on the same values",
          "[reference]") {
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  std::vector<float> params(net.num_params);
  ts::glorot_uniform_init(net, 5, params.data());
  Rng rng(51);
  std::vector<float> images(2 * size_t(net.input.size()));
  for (auto& x : images) x = float(rng.uniform());
  const auto f = ts::reference_train_step(net, params, images, {1, 9}, 2, 0.5);
  const auto d = ts::reference_train_step(net, std::vector<double>(params.begin(), params.end()),
                                          std::vector<double>(images.begin(), images.end()),
                                          {1, 9}, 2, 0.5);
  CHECK(f.logits == d.logits);
  CHECK(f.grad == d.grad);
  CHECK(f.loss_sum == d.loss_sum);
  CHECK(f.losses.size() == 2);
}

TEST_CASE("reference step rejects labels and buffers that do not fit the network",
          "[reference]") {
  const ts::NetworkSpec net = ts::finish_network("mlp", {1, 2, 2}, 3, {dense_layer("fc", 3, false)});
  const std::vector<double> params(net.num_params, 0.1), images(8, 0.5);
  CHECK_NOTHROW(ts::reference_train_step(net, params, images, {0, 2}, 2, 1.0));
  CHECK_THROWS_AS(ts::reference_train_step(net, params, images, {0, 3}, 2, 1.0),
                  std::invalid_argument);
  CHECK_THROWS_AS(ts::reference_train_step(net, params, images, {-1, 0}, 2, 1.0),
                  std::invalid_argument);
  CHECK_THROWS_AS(ts::reference_train_step(net, params, images, {0}, 2, 1.0),
                  std::invalid_argument);
  CHECK_THROWS_AS(ts::reference_train_step(net, params, std::vector<double>(7), {0, 1}, 2, 1.0),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      ts::reference_train_step(net, std::vector<double>(net.num_params + 1), images, {0, 1}, 2, 1.0),
      std::invalid_argument);
}

}  // namespace
