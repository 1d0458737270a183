// The engine's graph layers (issue 14): residual adds, a ReLU of its own, average pooling and
// the affine batch-norm scale, checked against equivalent chains of the built-in layers and
// against central differences of the engine's own loss. The imported ResNet's gradients are
// checked against PyTorch's in test_onnx_fixtures.cpp. Tag [dag].
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <stdexcept>

#include "model.h"
#include "network.h"
#include "random.h"

using ts::LayerKind;
using ts::LayerSpec;
using ts::NetworkSpec;

namespace {

LayerSpec layer(LayerKind kind, const std::string& name) {
  LayerSpec l;
  l.kind = kind;
  l.name = name;
  return l;
}

LayerSpec conv(const std::string& name, int out, int k, int stride, int pad, bool relu, std::vector<int> inputs = {}) {
  LayerSpec l = layer(LayerKind::kConv, name);
  l.out_channels = out;
  l.kernel = k;
  l.stride = stride;
  l.pad_begin = l.pad_end = pad;
  l.relu = relu;
  l.inputs = std::move(inputs);
  return l;
}

LayerSpec dense(const std::string& name, int units) {
  LayerSpec l = layer(LayerKind::kDense, name);
  l.out_channels = units;
  return l;
}

LayerSpec bn(const std::string& name, bool scale, int group) {
  LayerSpec l = layer(LayerKind::kBatchNorm, name);
  l.bn_scale = scale;
  l.bn_group = group;
  return l;
}

LayerSpec add(const std::string& name, int a, int b, bool relu = false) {
  LayerSpec l = layer(LayerKind::kAdd, name);
  l.inputs = {a, b};
  l.relu = relu;
  return l;
}

struct Step {
  double loss = 0;
  std::vector<float> grad;
};

Step step(const NetworkSpec& net, const std::vector<float>& params, int n, uint64_t seed) {
  ts::Rng rng(seed);
  std::vector<float> images(size_t(n) * net.input.size());
  for (auto& x : images) x = float(rng.uniform() - 0.5);
  std::vector<int32_t> labels;
  for (int i = 0; i < n; ++i) labels.push_back(int32_t(rng.below(net.num_classes)));
  ts::ModelOptions o;
  o.winograd = false;
  ts::Model m(net, n, o);
  m.set_params(params.data());
  Step s;
  s.grad.assign(net.num_params, 0.f);
  s.loss = m.train_step(images.data(), labels.data(), n, 1.f / float(n), s.grad.data()).loss_sum / n;
  return s;
}

std::vector<float> params_of(const NetworkSpec& net, uint64_t seed) {
  std::vector<float> p(net.num_params);
  ts::pytorch_default_init(net, seed, p.data());
  ts::Rng rng(seed + 7);
  for (const auto& ps : net.params)
    if (ps.role == ts::ParamSpec::Role::kBias || ps.role == ts::ParamSpec::Role::kBnShift ||
        ps.role == ts::ParamSpec::Role::kBnScale)
      for (size_t i = 0; i < ps.size; ++i) p[ps.offset + i] += float(0.2 * (rng.uniform() - 0.5));
  return p;
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 1e-6;
  for (float x : b) scale = std::max(scale, double(std::fabs(x)));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]) / scale);
  return worst;
}

// A small residual net: stem conv, a block with a fork (identity shortcut), a strided block
// with a 1x1 projection shortcut, global average pool, dense.
NetworkSpec small_resnet(int group) {
  std::vector<LayerSpec> ls;
  ls.push_back(conv("stem", 8, 3, 1, 1, false));                  // 0
  ls.push_back(bn("stem_bn", true, group));                       // 1
  ls.push_back(layer(LayerKind::kRelu, "stem_relu"));             // 2
  ls.push_back(conv("b1.conv1", 8, 3, 1, 1, false));              // 3
  ls.push_back(bn("b1.bn1", true, group));                        // 4
  ls.push_back(layer(LayerKind::kRelu, "b1.relu1"));              // 5
  ls.push_back(conv("b1.conv2", 8, 3, 1, 1, false));              // 6
  ls.push_back(bn("b1.bn2", true, group));                        // 7
  ls.push_back(add("b1.add", 7, 2, true));                        // 8
  ls.push_back(conv("b2.conv1", 16, 3, 2, 1, false));             // 9
  ls.push_back(bn("b2.bn1", true, group));                        // 10
  ls.push_back(layer(LayerKind::kRelu, "b2.relu1"));              // 11
  ls.push_back(conv("b2.conv2", 16, 3, 1, 1, false));             // 12
  ls.push_back(bn("b2.bn2", true, group));                        // 13
  ls.push_back(conv("b2.short", 16, 1, 2, 0, false, {8}));        // 14
  ls.push_back(bn("b2.short_bn", true, group));                   // 15
  ls.push_back(add("b2.add", 13, 15, true));                      // 16
  LayerSpec pool = layer(LayerKind::kAvgPool, "pool");            // 17: 16x16 -> 8x8
  pool.kernel = 3;
  pool.stride = 2;
  pool.pad_begin = pool.pad_end = 1;
  ls.push_back(pool);
  ls.push_back(layer(LayerKind::kGlobalAvgPool, "gap"));          // 18
  ls.push_back(dense("fc", 10));                                  // 19
  for (auto& l : ls)
    if (l.kind == LayerKind::kConv) l.bias = false;
  return ts::finish_network("small_resnet", {3, 32, 32}, 10, ls);
}

}  // namespace

TEST_CASE("an add of a layer's output to itself trains as a scale by 2", "[dag]") {
  const NetworkSpec twice = ts::finish_network(
      "twice", {3, 32, 32}, 10, {conv("conv1", 8, 3, 1, 1, true), add("add", 0, 0), layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)});
  LayerSpec sc = layer(LayerKind::kScale, "add");
  sc.scale = 2.f;
  const NetworkSpec scaled = ts::finish_network(
      "scaled", {3, 32, 32}, 10, {conv("conv1", 8, 3, 1, 1, true), sc, layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)});
  REQUIRE(twice.num_params == scaled.num_params);
  const auto p = params_of(twice, 3);
  const Step a = step(twice, p, 4, 11), b = step(scaled, p, 4, 11);
  CHECK(a.loss == Approx(b.loss).epsilon(1e-6));
  CHECK(max_rel(a.grad, b.grad) < 1e-5);
}

TEST_CASE("a ReLU of its own trains as the fused one", "[dag]") {
  const NetworkSpec fused = ts::finish_network(
      "fused", {3, 32, 32}, 10, {conv("conv1", 8, 3, 1, 0, true), layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)});
  const NetworkSpec apart = ts::finish_network(
      "apart", {3, 32, 32}, 10,
      {conv("conv1", 8, 3, 1, 0, false), layer(LayerKind::kRelu, "relu"), layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)});
  const auto p = params_of(fused, 5);
  const Step a = step(fused, p, 4, 2), b = step(apart, p, 4, 2);
  CHECK(a.loss == Approx(b.loss).epsilon(1e-6));
  CHECK(max_rel(a.grad, b.grad) < 1e-5);
}

TEST_CASE("graphs that cannot train are refused by name", "[dag]") {
  auto message = [](std::vector<LayerSpec> ls) {
    try {
      ts::finish_network("bad", {3, 32, 32}, 10, std::move(ls));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CHECK_THAT(message({conv("c", 8, 3, 1, 1, true), conv("d", 8, 3, 1, 1, true, {-1}), layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)}),
             Catch::Contains("layer 'c': its output is never read"));
  CHECK_THAT(message({conv("c", 8, 3, 1, 1, true), conv("d", 4, 3, 1, 1, true), add("a", 0, 1), layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)}),
             Catch::Contains("layer 'a': adds inputs of shapes [8,32,32] and [4,32,32]"));
  CHECK_THAT(message({conv("c", 8, 3, 1, 1, true), add("a", 0, 3), layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)}),
             Catch::Contains("an input must be an earlier layer or the image"));
  LayerSpec lonely = layer(LayerKind::kAdd, "a");
  CHECK_THAT(message({conv("c", 8, 3, 1, 1, true), lonely, layer(LayerKind::kGlobalAvgPool, "gap"), dense("fc", 10)}),
             Catch::Contains("an add layer names its two inputs"));
}

// Central differences of the engine's f32 loss: coarse (f32 rounding), but a missed or doubled
// branch of the fork, or a wrong scale gradient, is off by far more.
TEST_CASE("a residual net's gradients agree with central differences of its loss", "[dag]") {
  const int n = 4;
  const NetworkSpec net = small_resnet(n);
  auto p = params_of(net, 9);
  const Step base = step(net, p, n, 21);
  ts::Rng pick(5);
  int checked = 0;
  for (const auto& ps : net.params) {
    if (ps.is_buffer()) continue;
    for (int t = 0; t < 3; ++t) {
      const size_t i = ps.offset + size_t(pick.below(ps.size));
      const float h = 1e-2f * std::max(1.f, std::fabs(p[i]));
      const float saved = p[i];
      p[i] = saved + h;
      const double up = step(net, p, n, 21).loss;
      p[i] = saved - h;
      const double down = step(net, p, n, 21).loss;
      p[i] = saved;
      const double fd = (up - down) / (2.0 * h);
      INFO(ps.name << "[" << i - ps.offset << "]: engine " << base.grad[i] << ", differences " << fd);
      CHECK(std::fabs(base.grad[i] - fd) <= 2e-3 + 5e-2 * std::fabs(fd));
      ++checked;
    }
  }
  CHECK(checked == 3 * 20);
}
