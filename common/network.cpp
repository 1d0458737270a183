#include "network.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "random.h"

namespace ts {

const char* layer_kind_name(LayerKind kind) {
  switch (kind) {
    case LayerKind::kConv: return "conv";
    case LayerKind::kMaxPool: return "maxpool";
    case LayerKind::kGlobalAvgPool: return "global_avgpool";
    case LayerKind::kLrn: return "lrn";
    case LayerKind::kDense: return "dense";
    case LayerKind::kBatchNorm: return "batchnorm";
    case LayerKind::kGelu: return "gelu";
    case LayerKind::kScale: return "scale";
    case LayerKind::kRelu: return "relu";
    case LayerKind::kAvgPool: return "avgpool";
    case LayerKind::kAdd: return "add";
  }
  return "?";
}

namespace {

LayerSpec conv(std::string name, int out, int k, int pad, bool relu) {
  LayerSpec l;
  l.kind = LayerKind::kConv;
  l.name = std::move(name);
  l.out_channels = out;
  l.kernel = k;
  l.stride = 1;
  l.pad_begin = l.pad_end = pad;
  l.relu = relu;
  return l;
}

// pad_begin/pad_end < 0 means TF "SAME": output = ceil(in / stride), extra padding at the end.
LayerSpec maxpool(std::string name, int k, int stride, bool same) {
  LayerSpec l;
  l.kind = LayerKind::kMaxPool;
  l.name = std::move(name);
  l.kernel = k;
  l.stride = stride;
  l.pad_begin = l.pad_end = same ? -1 : 0;
  return l;
}

LayerSpec global_avgpool(std::string name) {
  LayerSpec l;
  l.kind = LayerKind::kGlobalAvgPool;
  l.name = std::move(name);
  return l;
}

// TensorFlow's tf.nn.lrn(depth_radius=r, bias, alpha, beta) in oneDNN's convention:
// size = 2r + 1 and alpha_onednn = alpha_tf * size (oneDNN divides alpha by size).
LayerSpec lrn_tf(std::string name, int depth_radius, float bias, float alpha, float beta) {
  LayerSpec l;
  l.kind = LayerKind::kLrn;
  l.name = std::move(name);
  l.lrn_size = 2 * depth_radius + 1;
  l.lrn_alpha = alpha * float(l.lrn_size);
  l.lrn_beta = beta;
  l.lrn_k = bias;
  return l;
}

LayerSpec dense(std::string name, int units, bool relu) {
  LayerSpec l;
  l.kind = LayerKind::kDense;
  l.name = std::move(name);
  l.out_channels = units;
  l.relu = relu;
  return l;
}

// airbench's Conv: 3x3 "same", no bias, dirac init on the first in-channel filters.
LayerSpec conv_nobias(std::string name, int out) {
  LayerSpec l = conv(std::move(name), out, 3, 1, false);
  l.bias = false;
  l.dirac = true;
  return l;
}

// airbench's BatchNorm(momentum 0.6, eps 1e-12): PyTorch momentum 1 - 0.6.
LayerSpec batchnorm(std::string name, int group) {
  LayerSpec l;
  l.kind = LayerKind::kBatchNorm;
  l.name = std::move(name);
  l.bn_group = group;
  l.bn_eps = 1e-12f;
  l.bn_momentum = 1.f - 0.6f;
  return l;
}

LayerSpec gelu(std::string name) {
  LayerSpec l;
  l.kind = LayerKind::kGelu;
  l.name = std::move(name);
  return l;
}

LayerSpec scale(std::string name, float factor) {
  LayerSpec l;
  l.kind = LayerKind::kScale;
  l.name = std::move(name);
  l.scale = factor;
  return l;
}

int out_size(int in, int k, int stride, int pad_total) { return (in + pad_total - k) / stride + 1; }

}  // namespace

NetworkSpec finish_network(std::string name, Shape3 input, int num_classes,
                           std::vector<LayerSpec> layers) {
  NetworkSpec net;
  net.name = std::move(name);
  net.input = input;
  net.num_classes = num_classes;
  Shape3 cur = input;
  auto fail = [&](const LayerSpec& l, const std::string& why) {
    throw std::invalid_argument("network '" + net.name + "', layer '" + l.name + "': " + why);
  };
  auto add_param = [&](const std::string& pname, std::vector<int64_t> shape, int fan_in,
                       int fan_out, bool is_bias,
                       ParamSpec::Role role = ParamSpec::Role::kWeight, bool frozen = false) {
    ParamSpec p;
    p.name = pname;
    p.shape = std::move(shape);
    p.size = 1;
    for (auto d : p.shape) p.size *= size_t(d);
    p.offset = net.num_params;
    p.fan_in = fan_in;
    p.fan_out = fan_out;
    p.is_bias = is_bias;
    p.role = is_bias && role == ParamSpec::Role::kWeight ? ParamSpec::Role::kBias : role;
    p.frozen = frozen;
    net.num_params += p.size;
    net.params.push_back(std::move(p));
    return int(net.params.size() - 1);
  };
  for (size_t li = 0; li < layers.size(); ++li) {
    LayerSpec& l = layers[li];
    // The shape this layer reads: its first input's (a kAdd checks its second below).
    const size_t want_inputs = l.kind == LayerKind::kAdd ? 2 : 1;
    if (l.inputs.empty() && l.kind == LayerKind::kAdd) fail(l, "an add layer names its two inputs");
    if (!l.inputs.empty() && l.inputs.size() != want_inputs)
      fail(l, "a " + std::string(layer_kind_name(l.kind)) + " layer reads " + std::to_string(want_inputs) +
                  " input" + (want_inputs == 1 ? "" : "s") + ", not " + std::to_string(l.inputs.size()));
    auto shape_of = [&](int from) {
      if (from == kNetworkInput) return input;
      if (from < 0 || size_t(from) >= li) fail(l, "an input must be an earlier layer or the image");
      return layers[size_t(from)].out;
    };
    if (!l.inputs.empty()) cur = shape_of(l.inputs[0]);
    l.in = cur;
    switch (l.kind) {
      case LayerKind::kConv: {
        const int pad = l.pad_begin + l.pad_end;
        if (l.kernel <= 0 || l.out_channels <= 0 || l.stride <= 0)
          fail(l, "kernel, filters and stride must be positive");
        if (l.pad_begin < 0 || l.pad_end < 0) fail(l, "padding must not be negative");
        if (cur.h + pad < l.kernel || cur.w + pad < l.kernel) fail(l, "kernel larger than input");
        l.out = {l.out_channels, out_size(cur.h, l.kernel, l.stride, pad),
                 out_size(cur.w, l.kernel, l.stride, pad)};
        const int k2 = l.kernel * l.kernel;
        l.weight_param = add_param(l.name + ".weight", {l.out_channels, cur.c, l.kernel, l.kernel},
                                   cur.c * k2, l.out_channels * k2, false,
                                   ParamSpec::Role::kWeight, l.frozen);
        if (l.bias) l.bias_param = add_param(l.name + ".bias", {l.out_channels}, 0, 0, true);
        if (l.dirac && l.out_channels < cur.c) fail(l, "dirac init needs filters >= in channels");
        break;
      }
      case LayerKind::kAvgPool:
      case LayerKind::kMaxPool: {
        if (l.kernel <= 0 || l.stride <= 0) fail(l, "window and stride must be positive");
        if ((l.pad_begin < 0) != (l.pad_end < 0)) fail(l, "padding: both ends SAME (-1) or both explicit");
        if (l.pad_begin < 0) {  // TF "SAME"
          const int oh = (cur.h + l.stride - 1) / l.stride;
          const int total = std::max((oh - 1) * l.stride + l.kernel - cur.h, 0);
          if (cur.h != cur.w) fail(l, "SAME pooling needs square inputs");
          l.pad_begin = total / 2;
          l.pad_end = total - l.pad_begin;
        }
        const int pad = l.pad_begin + l.pad_end;
        if (cur.h + pad < l.kernel) fail(l, "window larger than input");
        if (l.pad_begin >= l.kernel || l.pad_end >= l.kernel) fail(l, "padding as large as window");
        l.out = {cur.c, out_size(cur.h, l.kernel, l.stride, pad),
                 out_size(cur.w, l.kernel, l.stride, pad)};
        break;
      }
      case LayerKind::kGlobalAvgPool:
        l.kernel = cur.h;  // window = whole map (square inputs only, checked below)
        if (cur.h != cur.w) fail(l, "global pooling of a non-square map is not supported");
        l.stride = 1;
        l.out = {cur.c, 1, 1};
        break;
      case LayerKind::kLrn:
        if (l.lrn_size <= 0 || l.lrn_size % 2 == 0) fail(l, "LRN size must be odd and positive");
        l.out = cur;
        break;
      case LayerKind::kDense: {
        if (l.out_channels <= 0) fail(l, "units must be positive");
        const int in = int(cur.size());
        l.out = {l.out_channels, 1, 1};
        l.weight_param = add_param(l.name + ".weight", {l.out_channels, in}, in, l.out_channels,
                                   false, ParamSpec::Role::kWeight, l.frozen);
        if (l.bias) l.bias_param = add_param(l.name + ".bias", {l.out_channels}, 0, 0, true);
        break;
      }
      case LayerKind::kBatchNorm:
        if (l.bn_group < 2) fail(l, "batch-norm group must be at least 2 samples");
        if (!(l.bn_eps > 0) || !(l.bn_momentum > 0 && l.bn_momentum <= 1))
          fail(l, "batch norm needs eps > 0 and momentum in (0, 1]");
        l.out = cur;
        if (l.bn_scale) l.weight_param = add_param(l.name + ".weight", {cur.c}, 0, 0, false, ParamSpec::Role::kBnScale);
        l.bias_param = add_param(l.name + ".bias", {cur.c}, 0, 0, true, ParamSpec::Role::kBnShift);
        add_param(l.name + ".running_mean", {cur.c}, 0, 0, false, ParamSpec::Role::kRunningMean);
        add_param(l.name + ".running_var", {cur.c}, 0, 0, false, ParamSpec::Role::kRunningVar);
        break;
      case LayerKind::kGelu:
      case LayerKind::kScale:
      case LayerKind::kRelu:
        l.out = cur;
        break;
      case LayerKind::kAdd: {
        const Shape3 other = shape_of(l.inputs[1]);
        if (!(other == cur))
          fail(l, "adds inputs of shapes [" + std::to_string(cur.c) + "," + std::to_string(cur.h) + "," +
                      std::to_string(cur.w) + "] and [" + std::to_string(other.c) + "," + std::to_string(other.h) +
                      "," + std::to_string(other.w) + "]: an add needs one shape");
        l.out = cur;
        break;
      }
    }
    if (l.out.h <= 0 || l.out.w <= 0) fail(l, "output would be empty");
    cur = l.out;
  }
  if (!layers.empty() && layers.back().relu)
    throw std::invalid_argument("network '" + net.name + "': the last layer gives logits and must not end in ReLU");
  if (layers.empty() || cur.size() != num_classes)
    throw std::invalid_argument("network '" + net.name + "' must end in " +
                                std::to_string(num_classes) + " logits");
  // Every layer's output but the last (the logits) is read by a later layer: backward must
  // reach every parameter, and the gradient buffer is written whole.
  std::vector<bool> read(layers.size(), false);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].inputs.empty()) {
      if (i > 0) read[i - 1] = true;
    } else {
      for (int j : layers[i].inputs)
        if (j >= 0) read[size_t(j)] = true;
    }
  }
  for (size_t i = 0; i + 1 < layers.size(); ++i)
    if (!read[i])
      throw std::invalid_argument("network '" + net.name + "', layer '" + layers[i].name +
                                  "': its output is never read (only the last layer's may end the graph)");
  net.layers = std::move(layers);
  int group = 0;
  for (const auto& l : net.layers)
    if (l.kind == LayerKind::kBatchNorm) {
      if (group && l.bn_group != group)
        throw std::invalid_argument("network '" + net.name + "': every batch-norm layer must use the same group size");
      group = l.bn_group;
    }
  return net;
}

std::vector<int> layer_inputs(const NetworkSpec& net, size_t i) {
  const LayerSpec& l = net.layers.at(i);
  if (!l.inputs.empty()) return l.inputs;
  return {i == 0 ? kNetworkInput : int(i) - 1};
}

int NetworkSpec::sample_granule() const {
  for (const auto& l : layers)
    if (l.kind == LayerKind::kBatchNorm) return l.bn_group;
  return 1;
}

void set_bn_group(NetworkSpec& net, int group) {
  if (group < 2)
    throw std::invalid_argument("batch-norm group of " + std::to_string(group) +
                                " samples: an unbiased variance needs at least 2");
  bool any = false;
  for (auto& l : net.layers)
    if (l.kind == LayerKind::kBatchNorm) {
      l.bn_group = group;
      any = true;
    }
  if (!any) throw std::invalid_argument("network '" + net.name + "' has no batch norm to group");
}

std::vector<std::string> network_names() { return {"seed_cnn", "tf_tutorial_cnn", "airbench94"}; }

// Samples per batch-norm group of airbench94 unless --bn-group says otherwise: 1024 / 16, so
// every P up to 16 deals the recipe's batch in whole groups.
constexpr int kAirbenchBnGroup = 64;

NetworkSpec build_network(const std::string& name) {
  const Shape3 cifar{3, 32, 32};
  if (name == "seed_cnn") {
    // The Keras example this project started from:
    // conv 3->32 3x3 valid relu, maxpool 2x2, conv 32->64 3x3 valid relu, GAP, dense 64->10.
    return finish_network(name, cifar, 10,
                          {conv("conv1", 32, 3, 0, true), maxpool("pool1", 2, 2, false),
                           conv("conv2", 64, 3, 0, true), global_avgpool("gap"),
                           dense("fc", 10, false)});
  }
  if (name == "tf_tutorial_cnn") {
    // TensorFlow's classic CIFAR-10 tutorial network on 32x32 inputs.
    return finish_network(
        name, cifar, 10,
        {conv("conv1", 64, 5, 2, true), maxpool("pool1", 3, 2, true),
         lrn_tf("norm1", 4, 1.0f, 0.001f / 9.0f, 0.75f), conv("conv2", 64, 5, 2, true),
         lrn_tf("norm2", 4, 1.0f, 0.001f / 9.0f, 0.75f), maxpool("pool2", 3, 2, true),
         dense("fc3", 384, true), dense("fc4", 192, true), dense("fc5", 10, false)});
  }
  if (name == "airbench94") {
    // Keller Jordan's airbench94 (cifar10-airbench, legacy/airbench94.py): a frozen 2x2
    // whitening conv (weights set from the data, bias trained for the first epochs), three
    // conv groups of widths 64, 256, 256, max pool 3, dense 256->10 without bias, logits / 9.
    LayerSpec whiten = conv("whiten", 24, 2, 0, false);
    whiten.frozen = true;
    std::vector<LayerSpec> ls = {whiten, gelu("whiten_gelu")};
    int g = 1;
    for (int width : {64, 256, 256}) {
      const std::string p = "group" + std::to_string(g++) + ".";
      ls.push_back(conv_nobias(p + "conv1", width));
      ls.push_back(maxpool(p + "pool", 2, 2, false));
      ls.push_back(batchnorm(p + "norm1", kAirbenchBnGroup));
      ls.push_back(gelu(p + "gelu1"));
      ls.push_back(conv_nobias(p + "conv2", width));
      ls.push_back(batchnorm(p + "norm2", kAirbenchBnGroup));
      ls.push_back(gelu(p + "gelu2"));
    }
    ls.push_back(maxpool("pool", 3, 3, false));
    LayerSpec fc = dense("fc", 10, false);
    fc.bias = false;
    ls.push_back(fc);
    ls.push_back(scale("logit_scale", 1.f / 9.f));
    NetworkSpec net = finish_network(name, cifar, 10, std::move(ls));
    net.init = "pytorch";
    return net;
  }
  std::string known;
  for (const auto& n : network_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown model '" + name + "' (known: " + known + ")");
}

void glorot_uniform_init(const NetworkSpec& net, uint64_t seed, float* params) {
  for (size_t i = 0; i < net.params.size(); ++i) {
    const ParamSpec& p = net.params[i];
    float* dst = params + p.offset;
    if (p.is_bias || p.is_buffer() || p.role == ParamSpec::Role::kBnScale) {
      // Running statistics start as PyTorch's: mean 0, variance 1 (they have no fan); a
      // batch-norm scale starts at 1.
      const float fill = p.role == ParamSpec::Role::kRunningVar || p.role == ParamSpec::Role::kBnScale ? 1.f : 0.f;
      for (size_t j = 0; j < p.size; ++j) dst[j] = fill;
      continue;
    }
    const double limit = std::sqrt(6.0 / double(p.fan_in + p.fan_out));
    Rng rng(mix_seed(seed, 0x1417, i));  // one stream per tensor: adding a layer moves no other
    for (size_t j = 0; j < p.size; ++j) dst[j] = float((2.0 * rng.uniform() - 1.0) * limit);
  }
}

void pytorch_default_init(const NetworkSpec& net, uint64_t seed, float* params) {
  for (size_t i = 0; i < net.params.size(); ++i) {
    const ParamSpec& p = net.params[i];
    float* dst = params + p.offset;
    const float fill = p.role == ParamSpec::Role::kRunningVar || p.role == ParamSpec::Role::kBnScale ? 1.f : 0.f;
    if (p.role != ParamSpec::Role::kWeight) {
      std::fill(dst, dst + p.size, fill);
      continue;
    }
    // fan_in = in x kh x kw, PyTorch's too (Keras' fan_in is the same product).
    const double bound = 1.0 / std::sqrt(double(p.fan_in));
    Rng rng(mix_seed(seed, 0x7041, i));
    for (size_t j = 0; j < p.size; ++j) dst[j] = float((2.0 * rng.uniform() - 1.0) * bound);
  }
  for (const auto& l : net.layers) {
    if (l.kind != LayerKind::kConv || !l.dirac) continue;
    const ParamSpec& w = net.params[size_t(l.weight_param)];
    float* dst = params + w.offset;
    const int c = l.in.c, k = l.kernel;
    // torch.nn.init.dirac_(w[:in]): filters 0..in-1 become the identity on their channel.
    std::fill(dst, dst + size_t(c) * c * k * k, 0.f);
    for (int o = 0; o < c; ++o) dst[((size_t(o) * c + o) * k + k / 2) * k + k / 2] = 1.f;
  }
}

void init_params(const NetworkSpec& net, uint64_t seed, float* params) {
  if (net.init == "pytorch")
    pytorch_default_init(net, seed, params);
  else
    glorot_uniform_init(net, seed, params);
}

FlopCount count_flops(const NetworkSpec& net, int batch) {
  FlopCount f;
  bool first = true;
  for (const auto& l : net.layers) {
    double macs = 0;
    if (l.kind == LayerKind::kConv)
      macs = double(l.out.size()) * l.in.c * l.kernel * l.kernel;
    else if (l.kind == LayerKind::kDense)
      macs = double(l.in.size()) * l.out_channels;
    else
      continue;
    const double flops = 2.0 * macs * batch;
    f.forward += flops;
    // Weights unless frozen, data except for the first layer.
    f.backward += flops * ((l.frozen ? 0 : 1) + (first ? 0 : 1));
    first = false;
  }
  return f;
}

}  // namespace ts
