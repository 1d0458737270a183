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
                       int fan_out, bool is_bias) {
    ParamSpec p;
    p.name = pname;
    p.shape = std::move(shape);
    p.size = 1;
    for (auto d : p.shape) p.size *= size_t(d);
    p.offset = net.num_params;
    p.fan_in = fan_in;
    p.fan_out = fan_out;
    p.is_bias = is_bias;
    net.num_params += p.size;
    net.params.push_back(std::move(p));
    return int(net.params.size() - 1);
  };
  for (auto& l : layers) {
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
                                   cur.c * k2, l.out_channels * k2, false);
        l.bias_param = add_param(l.name + ".bias", {l.out_channels}, 0, 0, true);
        break;
      }
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
        l.weight_param = add_param(l.name + ".weight", {l.out_channels, in}, in, l.out_channels, false);
        l.bias_param = add_param(l.name + ".bias", {l.out_channels}, 0, 0, true);
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
  net.layers = std::move(layers);
  return net;
}

std::vector<std::string> network_names() { return {"seed_cnn", "tf_tutorial_cnn"}; }

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
  std::string known;
  for (const auto& n : network_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown model '" + name + "' (known: " + known + ")");
}

void glorot_uniform_init(const NetworkSpec& net, uint64_t seed, float* params) {
  for (size_t i = 0; i < net.params.size(); ++i) {
    const ParamSpec& p = net.params[i];
    float* dst = params + p.offset;
    if (p.is_bias) {
      for (size_t j = 0; j < p.size; ++j) dst[j] = 0.f;
      continue;
    }
    const double limit = std::sqrt(6.0 / double(p.fan_in + p.fan_out));
    Rng rng(mix_seed(seed, 0x1417, i));  // one stream per tensor: adding a layer moves no other
    for (size_t j = 0; j < p.size; ++j) dst[j] = float((2.0 * rng.uniform() - 1.0) * limit);
  }
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
    f.backward += flops * (first ? 1 : 2);  // weights always, data except for the first layer
    first = false;
  }
  return f;
}

}  // namespace ts
