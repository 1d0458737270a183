// airbench94's pieces: batch norm over fixed groups, GELU, the logit scale, bias-less and frozen
// layers and label smoothing. The double-precision reference is proved by finite differences
// and by values worked out directly; the oneDNN engine is then checked against it, the
// running-statistic slots and evaluation mode included. Tags [reference], [engine].
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <vector>

#include "model.h"
#include "network.h"
#include "random.h"
#include "reference/reference_layers.h"
#include "reference/reference_model.h"

namespace {

using ts::LayerKind;
using ts::LayerSpec;
using ts::Rng;

LayerSpec conv(const char* name, int out, int k, int pad, bool bias, bool frozen) {
  LayerSpec l;
  l.kind = LayerKind::kConv;
  l.name = name;
  l.out_channels = out;
  l.kernel = k;
  l.pad_begin = l.pad_end = pad;
  l.bias = bias;
  l.frozen = frozen;
  return l;
}
LayerSpec of_kind(LayerKind k, const char* name) {
  LayerSpec l;
  l.kind = k;
  l.name = name;
  return l;
}
LayerSpec pool(const char* name, int k) {
  LayerSpec l = of_kind(LayerKind::kMaxPool, name);
  l.kernel = l.stride = k;
  return l;
}
LayerSpec bn(const char* name, int group) {
  LayerSpec l = of_kind(LayerKind::kBatchNorm, name);
  l.bn_group = group;
  l.bn_eps = 1e-5f;  // airbench's 1e-12 is tested on the real net below
  l.bn_momentum = 0.4f;
  return l;
}

// airbench94 in small: whitening conv (frozen weight, bias), GELU, conv without bias, pool,
// batch norm, GELU, conv, batch norm, GELU, pool, dense without bias, scale.
ts::NetworkSpec tiny_airbench(int group) {
  LayerSpec fc = of_kind(LayerKind::kDense, "fc");
  fc.out_channels = 10;
  fc.bias = false;
  LayerSpec sc = of_kind(LayerKind::kScale, "scale");
  sc.scale = 1.f / 9;
  return ts::finish_network(
      "tiny_airbench", {3, 9, 9}, 10,
      {conv("whiten", 6, 2, 0, true, true), of_kind(LayerKind::kGelu, "g0"),
       conv("conv1", 16, 3, 1, false, false), pool("pool1", 2), bn("bn1", group),
       of_kind(LayerKind::kGelu, "g1"), conv("conv2", 16, 3, 1, false, false), bn("bn2", group),
       of_kind(LayerKind::kGelu, "g2"), pool("pool2", 2), fc, sc});
}

std::vector<double> random_params(const ts::NetworkSpec& net, uint64_t seed) {
  std::vector<float> f(net.num_params);
  ts::pytorch_default_init(net, seed, f.data());
  std::vector<double> p(f.begin(), f.end());
  Rng rng(seed + 5);
  for (const auto& ps : net.params) {
    if (ps.role == ts::ParamSpec::Role::kBias || ps.role == ts::ParamSpec::Role::kBnShift)
      for (size_t j = 0; j < ps.size; ++j) p[ps.offset + j] = 0.3 * (2 * rng.uniform() - 1);
    if (ps.role == ts::ParamSpec::Role::kRunningMean)
      for (size_t j = 0; j < ps.size; ++j) p[ps.offset + j] = 0.2 * (2 * rng.uniform() - 1);
    if (ps.role == ts::ParamSpec::Role::kRunningVar)
      for (size_t j = 0; j < ps.size; ++j) p[ps.offset + j] = 0.5 + rng.uniform();
  }
  return p;
}

std::vector<double> random_vector(Rng& rng, size_t n, double lo, double hi) {
  std::vector<double> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

double rel_error(const float* a, const double* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

}  // namespace

TEST_CASE("batch norm's reference backward matches finite differences through the group statistics",
          "[reference]") {
  const int N = 4, C = 3, HW = 5, G = 2;
  const double eps = 1e-5;
  Rng rng(3);
  auto in = random_vector(rng, size_t(N) * C * HW, -2, 2);
  auto shift = random_vector(rng, C, -1, 1);
  const auto w = random_vector(rng, in.size(), -1, 1);  // objective: sum w * out^2 (not linear)
  auto objective = [&] {
    std::vector<double> out(in.size()), xhat(in.size()), gm(size_t(N / G) * C), gv(gm.size());
    ts::ref::batchnorm_train_forward(out.data(), xhat.data(), gm.data(), gv.data(), in.data(),
                                     shift.data(), N, C, HW, G, eps);
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += w[i] * out[i] * out[i];
    return s;
  };
  std::vector<double> out(in.size()), xhat(in.size()), gm(size_t(N / G) * C), gv(gm.size());
  ts::ref::batchnorm_train_forward(out.data(), xhat.data(), gm.data(), gv.data(), in.data(),
                                   shift.data(), N, C, HW, G, eps);
  std::vector<double> dout(in.size()), din(in.size(), 0.0), dshift(C, 0.0);
  for (size_t i = 0; i < dout.size(); ++i) dout[i] = 2 * w[i] * out[i];
  ts::ref::batchnorm_train_backward(din.data(), dshift.data(), dout.data(), xhat.data(), gv.data(),
                                    N, C, HW, G, eps);
  const double h = 1e-6;
  for (auto* target : {&in, &shift}) {
    const std::vector<double>& analytic = target == &in ? din : dshift;
    for (size_t i = 0; i < target->size(); ++i) {
      const double saved = (*target)[i];
      (*target)[i] = saved + h;
      const double plus = objective();
      (*target)[i] = saved - h;
      const double minus = objective();
      (*target)[i] = saved;
      const double numeric = (plus - minus) / (2 * h);
      INFO((target == &in ? "input " : "shift ") << i);
      CHECK(analytic[i] == Approx(numeric).epsilon(1e-6).margin(1e-8));
    }
  }
  // Each group's output has mean shift and (biased) variance var / (var + eps) per channel.
  for (int g = 0; g < N / G; ++g)
    for (int c = 0; c < C; ++c) {
      double s = 0, s2 = 0;
      for (int n = g * G; n < (g + 1) * G; ++n)
        for (int i = 0; i < HW; ++i) {
          const double y = out[(size_t(n) * C + c) * HW + i] - shift[size_t(c)];
          s += y;
          s2 += y * y;
        }
      CHECK(s / (G * HW) == Approx(0).margin(1e-12));
      CHECK(s2 / (G * HW) == Approx(gv[size_t(g) * C + c] / (gv[size_t(g) * C + c] + eps)));
    }
}

TEST_CASE("GELU's reference is x Phi(x), and its backward matches finite differences", "[reference]") {
  const std::vector<double> x = {-3, -1, -0.25, 0, 0.5, 2};
  std::vector<double> y(x.size());
  ts::ref::gelu_forward(y.data(), x.data(), int64_t(x.size()));
  CHECK(y[3] == 0);
  CHECK(y[4] == Approx(0.5 * 0.691462461274013));  // Phi(0.5)
  CHECK(y[0] == Approx(-3 * 0.00134989803163009));
  std::vector<double> d(x.size(), 0.0), ones(x.size(), 1.0);
  ts::ref::gelu_backward(d.data(), ones.data(), x.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double h = 1e-6;
    double p = 0, m = 0;
    const double xp = x[i] + h, xm = x[i] - h;
    ts::ref::gelu_forward(&p, &xp, 1);
    ts::ref::gelu_forward(&m, &xm, 1);
    CHECK(d[i] == Approx((p - m) / (2 * h)).epsilon(1e-7));
  }
}

TEST_CASE("label smoothing: PyTorch's target (1 - s) onehot + s / K, by hand and by differences",
          "[reference]") {
  const std::vector<double> z = {1.0, -0.5, 2.0};
  const std::vector<int32_t> y = {0};
  double loss = 0;
  std::vector<double> probs(3);
  ts::ref::softmax_cross_entropy_forward(&loss, probs.data(), z.data(), y.data(), 1, 3, 0.2);
  const double lse = std::log(std::exp(1.0) + std::exp(-0.5) + std::exp(2.0));
  const double by_hand = 0.8 * (lse - 1.0) + 0.2 * (3 * lse - (1.0 - 0.5 + 2.0)) / 3;
  CHECK(loss == Approx(by_hand).epsilon(1e-12));
  std::vector<double> d(3, 0.0);
  ts::ref::softmax_cross_entropy_backward(d.data(), probs.data(), y.data(), 1, 3, 1.0, 0.2);
  for (int k = 0; k < 3; ++k) {
    auto zp = z, zm = z;
    zp[size_t(k)] += 1e-6;
    zm[size_t(k)] -= 1e-6;
    double lp = 0, lm = 0;
    std::vector<double> pr(3);
    ts::ref::softmax_cross_entropy_forward(&lp, pr.data(), zp.data(), y.data(), 1, 3, 0.2);
    ts::ref::softmax_cross_entropy_forward(&lm, pr.data(), zm.data(), y.data(), 1, 3, 0.2);
    CHECK(d[size_t(k)] == Approx((lp - lm) / 2e-6).epsilon(1e-6));
  }
}

TEST_CASE("reference step on a small airbench: every trainable gradient matches finite differences",
          "[reference]") {
  const ts::NetworkSpec net = tiny_airbench(2);
  const int n = 4;
  Rng rng(17);
  auto params = random_params(net, 18);
  const auto images = random_vector(rng, size_t(n) * net.input.size(), -1.5, 1.5);
  const std::vector<int32_t> labels = {3, 1, 4, 1};
  const double smoothing = 0.2;
  const auto step = ts::reference_train_step(net, params, images, labels, n, 1.0, smoothing);
  auto objective = [&] {
    return ts::reference_train_step(net, params, images, labels, n, 1.0, smoothing).loss_sum;
  };
  size_t checked = 0;
  double worst = 0;
  for (const auto& ps : net.params) {
    if (ps.is_buffer()) continue;
    for (size_t j = 0; j < ps.size; ++j) {
      const size_t i = ps.offset + j;
      if (ps.frozen) {  // never trained: reported as 0
        CHECK(step.grad[i] == 0);
        continue;
      }
      const double saved = params[i];
      params[i] = saved + 1e-6;
      const double plus = objective();
      params[i] = saved - 1e-6;
      const double minus = objective();
      params[i] = saved;
      const double numeric = (plus - minus) / 2e-6;
      const double err = std::fabs(step.grad[i] - numeric) / std::max(1e-3, std::fabs(numeric) + std::fabs(step.grad[i]));
      INFO(ps.name << "[" << j << "] analytic " << step.grad[i] << " numeric " << numeric);
      CHECK(err < 1e-5);
      worst = std::max(worst, err);
      ++checked;
    }
  }
  CHECK(checked > 500);
}

TEST_CASE("reference evaluation normalizes with the running statistics", "[reference]") {
  const ts::NetworkSpec net = ts::finish_network("bn_only", {2, 2, 2}, 8, {bn("bn", 2)});
  std::vector<double> params = {0.5, -0.25, /*mean*/ 0.0, 0.0, /*var*/ 1.0, 1.0};
  REQUIRE(params.size() == net.num_params);
  const std::vector<double> image = {1, 2, 3, 4, -1, -2, -3, -4};
  const auto r = ts::reference_forward(net, params, image, {0}, 1);
  for (int i = 0; i < 8; ++i) {
    const double shift = i < 4 ? 0.5 : -0.25;
    CHECK(r.logits[size_t(i)] == Approx(image[size_t(i)] / std::sqrt(1 + 1e-5) + shift));
  }
  // Training mode over one group of 2 identical samples: the group's mean and variance;
  // the slots hold their sums (one group) with the unbiased variance (m = 2 x 4 values).
  const std::vector<double> two = {1, 2, 3, 4, -1, -2, -3, -4, 1, 2, 3, 4, -1, -2, -3, -4};
  const auto t = ts::reference_train_step(net, params, two, {0, 1}, 2, 1.0);
  CHECK(t.grad[2] == Approx(2.5));
  CHECK(t.grad[3] == Approx(-2.5));
  CHECK(t.grad[4] == Approx(1.25 * 8 / 7));  // biased var of {1,2,3,4} twice = 1.25
  CHECK(t.grad[5] == Approx(1.25 * 8 / 7));
}

TEST_CASE("the engine matches the reference on a small airbench: loss, logits, every gradient slot",
          "[engine]") {
  const ts::NetworkSpec net = tiny_airbench(4);
  const int n = 8;
  Rng rng(71);
  const auto pd = random_params(net, 72);
  const std::vector<float> params(pd.begin(), pd.end());
  const auto imd = random_vector(rng, size_t(n) * net.input.size(), -1.5, 1.5);
  const std::vector<float> images(imd.begin(), imd.end());
  std::vector<int32_t> labels;
  for (int i = 0; i < n; ++i) labels.push_back(int32_t(rng.below(10)));
  ts::ModelOptions mo;
  mo.label_smoothing = 0.2;
  ts::Model model(net, n, mo);
  model.set_params(params.data());
  std::vector<float> grad(net.num_params, 12345.f);  // every float must be written
  const ts::StepStats st = model.train_step(images.data(), labels.data(), n, 1.f, grad.data());
  const auto ref = ts::reference_train_step(net, params, images, labels, n, 1.0, 0.2);
  CHECK(st.loss_sum == Approx(ref.loss_sum).epsilon(1e-5));
  const auto logits = model.last_logits();
  CHECK(rel_error(logits.data(), ref.logits.data(), logits.size()) < 1e-5);
  for (const auto& p : net.params) {
    const double e = rel_error(grad.data() + p.offset, ref.grad.data() + p.offset, p.size);
    INFO(p.name << " relative error " << e);
    CHECK(e < 1e-4);
    if (p.frozen)
      for (size_t j = 0; j < p.size; ++j) CHECK(grad[p.offset + j] == 0.f);
  }
  // Evaluation: the running statistics, not the batch's (reference_forward is eval mode).
  model.evaluate(images.data(), labels.data(), n);
  const auto eval_logits = model.last_logits();
  const auto ref_eval = ts::reference_forward(net, std::vector<double>(params.begin(), params.end()),
                                              std::vector<double>(images.begin(), images.end()), labels, n);
  CHECK(rel_error(eval_logits.data(), ref_eval.logits.data(), eval_logits.size()) < 1e-5);
  CHECK(rel_error(eval_logits.data(), ref.logits.data(), eval_logits.size()) > 1e-3);
  // A changed running mean moves the evaluation logits but not the training step's.
  std::vector<float> moved = params;
  const ts::ParamSpec& rm = net.params[size_t(net.layers[4].bias_param) + 1];
  for (size_t j = 0; j < rm.size; ++j) moved[rm.offset + j] += 0.5f;
  model.set_params(moved.data());
  model.evaluate(images.data(), labels.data(), n);
  const auto eval_moved = model.last_logits();
  CHECK(rel_error(eval_moved.data(), ref_eval.logits.data(), eval_moved.size()) > 1e-3);
  std::vector<float> grad2(net.num_params);
  model.train_step(images.data(), labels.data(), n, 1.f, grad2.data());
  CHECK(rel_error(model.last_logits().data(), ref.logits.data(), logits.size()) < 1e-5);
  // A batch that is not whole groups is refused in training, not in evaluation.
  ts::Model small(net, 6, mo);
  small.set_params(params.data());
  CHECK_THROWS_AS(small.train_step(images.data(), labels.data(), 6, 1.f, grad.data()),
                  std::invalid_argument);
  CHECK_NOTHROW(small.evaluate(images.data(), labels.data(), 6));
}

TEST_CASE("the engine matches the reference on airbench94 itself (groups of 2)", "[engine]") {
  ts::NetworkSpec net = ts::build_network("airbench94");
  ts::set_bn_group(net, 2);
  const int n = 4;
  Rng rng(91);
  const auto pd = random_params(net, 92);
  const std::vector<float> params(pd.begin(), pd.end());
  const auto imd = random_vector(rng, size_t(n) * net.input.size(), -2, 2);
  const std::vector<float> images(imd.begin(), imd.end());
  const std::vector<int32_t> labels = {0, 5, 9, 2};
  ts::ModelOptions mo;
  mo.label_smoothing = 0.2;
  ts::Model model(net, n, mo);
  model.set_params(params.data());
  std::vector<float> grad(net.num_params, 12345.f);
  const ts::StepStats st = model.train_step(images.data(), labels.data(), n, 1.f, grad.data());
  const auto ref = ts::reference_train_step(net, params, images, labels, n, 1.0, 0.2);
  CHECK(st.loss_sum == Approx(ref.loss_sum).epsilon(1e-4));
  for (const auto& p : net.params) {
    const double e = rel_error(grad.data() + p.offset, ref.grad.data() + p.offset, p.size);
    INFO(p.name << " relative error " << e);
    CHECK(e < 2e-3);  // eps 1e-12 and groups of 2: the normalization amplifies float rounding
  }
  model.evaluate(images.data(), labels.data(), n);
  const auto ref_eval = ts::reference_forward(net, std::vector<double>(params.begin(), params.end()),
                                              std::vector<double>(images.begin(), images.end()), labels, n);
  const auto eval_logits = model.last_logits();
  CHECK(rel_error(eval_logits.data(), ref_eval.logits.data(), eval_logits.size()) < 1e-4);
}

TEST_CASE("bf16: airbench94's convolutions run oneDNN's bf16 kernels and train like f32 to bf16's precision",
          "[engine]") {
  // Against the f32 engine at the recipe's own group (64): the double reference at this size
  // would take minutes, and the f32 engine is itself checked against it above.
  const ts::NetworkSpec net = ts::build_network("airbench94");
  const int n = 128;
  Rng rng(93);
  const auto pd = random_params(net, 94);
  const std::vector<float> params(pd.begin(), pd.end());
  std::vector<float> images(size_t(n) * net.input.size());
  for (auto& x : images) x = float(4 * rng.uniform() - 2);
  std::vector<int32_t> labels;
  for (int i = 0; i < n; ++i) labels.push_back(int32_t(rng.below(10)));
  ts::ModelOptions f32, bf16;
  f32.label_smoothing = bf16.label_smoothing = 0.2;
  bf16.precision = "bf16";
  ts::Model a(net, n, f32), b(net, n, bf16);
  a.set_params(params.data());
  b.set_params(params.data());
  std::vector<float> ga(net.num_params), gb(net.num_params, 12345.f);
  const ts::StepStats sa = a.train_step(images.data(), labels.data(), n, 1.f, ga.data());
  const ts::StepStats sb = b.train_step(images.data(), labels.data(), n, 1.f, gb.data());
  const std::vector<double> gad(ga.begin(), ga.end());
  // bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2% per value). The loss and the
  // last layers agree to about that; further down, every weight gradient is the small residue
  // of a sum over the batch of bf16 gradients that batch norm's backward made cancel (its
  // output sums to zero over each group): measured 1.7% at fc, 14-21% at the convolutions and
  // the whitening bias at this initialization, the same for every conv (so not one kernel
  // going wrong: a layout or type error gives 100% and more). PyTorch's autocast keeps these
  // gradients in bf16 alike.
  CHECK(sb.loss_sum == Approx(sa.loss_sum).epsilon(1e-2));
  for (const auto& p : net.params) {
    const double e = rel_error(gb.data() + p.offset, gad.data() + p.offset, p.size);
    INFO(p.name << " relative error " << e);
    if (p.frozen) {
      CHECK(e == 0);
      continue;
    }
    CHECK(e < (p.is_buffer() ? 0.005 : p.name == "fc.weight" ? 0.05 : 0.3));
  }
  int bf16_convs = 0;
  for (const std::string& name : b.implementation_names(n))
    if (name.find("conv") != std::string::npos && name.find(" fwd") != std::string::npos &&
        name.find("bf16") != std::string::npos)
      ++bf16_convs;
  CHECK(bf16_convs == 6);  // every 3x3 convolution; the whitening one stays f32
  ts::ModelOptions bad;
  bad.precision = "f16";
  CHECK_THROWS_AS(ts::Model(net, n, bad), std::invalid_argument);
}
