// The network *description*: layers, shapes, and where every parameter lives in the one flat
// float buffer. Plain data, no oneDNN, so the coordinator (optimizer, checkpoints) and the
// reference implementation in tests share it with the worker's engine.
//
// Flat parameter order: layers in order; per layer with parameters, the weight then the bias.
// Each tensor is stored row-major in PyTorch's layout:
//   conv weight  [out, in, kh, kw]      dense weight [out, in]      bias [out]
// A dense layer that follows a 3-D activation [C, H, W] flattens it in C, H, W order
// (PyTorch's x.flatten(1) of an NCHW tensor).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ts {

struct Shape3 {
  int c = 0, h = 0, w = 0;
  int64_t size() const { return int64_t(c) * h * w; }
  bool operator==(const Shape3& o) const { return c == o.c && h == o.h && w == o.w; }
};

enum class LayerKind {
  kConv,           // 2-D convolution + bias, optional fused ReLU
  kMaxPool,        // max pooling; padding never wins the max (TF "SAME" semantics)
  kGlobalAvgPool,  // mean over H x W -> [C, 1, 1]
  kLrn,            // local response normalization across channels
  kDense,          // fully connected + bias, optional fused ReLU
};

const char* layer_kind_name(LayerKind kind);

struct LayerSpec {
  LayerKind kind = LayerKind::kConv;
  std::string name;                 // "conv1", "pool1", ... (checkpoint tensor prefix)
  Shape3 in, out;                   // per-sample shapes, filled by build_network
  int out_channels = 0;             // conv filters / dense units
  int kernel = 0;                   // conv / pool window (square)
  int stride = 1;
  int pad_begin = 0, pad_end = 0;   // spatial padding, same for H and W
  bool relu = false;                // ReLU fused after conv / dense
  // LRN, oneDNN's convention: dst = src / (k + alpha / size * sum_{window} src^2)^beta,
  // window = `size` channels centred on the channel.
  int lrn_size = 0;
  float lrn_alpha = 0.f, lrn_beta = 0.f, lrn_k = 0.f;
  int weight_param = -1, bias_param = -1;  // indices into NetworkSpec::params, or -1
};

struct ParamSpec {
  std::string name;                 // "conv1.weight", "conv1.bias", ...
  std::vector<int64_t> shape;       // PyTorch layout (see top of file)
  size_t offset = 0;                // into the flat buffer, in floats
  size_t size = 0;                  // number of floats
  int fan_in = 0, fan_out = 0;      // Keras' definition, for Glorot init
  bool is_bias = false;
};

struct NetworkSpec {
  std::string name;
  Shape3 input;                     // per-sample input, [3, 32, 32] for CIFAR-10
  int num_classes = 0;
  std::vector<LayerSpec> layers;    // logits come out of the last layer; loss is softmax CE
  std::vector<ParamSpec> params;
  size_t num_params = 0;            // total floats in the flat buffer
};

// Known networks: "seed_cnn" (default), "tf_tutorial_cnn".
std::vector<std::string> network_names();

// Builds a network by name; throws std::invalid_argument naming the known ones otherwise.
NetworkSpec build_network(const std::string& name);

// The builder behind build_network: describe layers (shapes and param slots left empty),
// get back a spec with every shape inferred and every parameter placed. Throws
// std::invalid_argument when a layer does not fit its input.
NetworkSpec finish_network(std::string name, Shape3 input, int num_classes,
                           std::vector<LayerSpec> layers);

// Keras defaults: Glorot-uniform weights, U(-l, l) with l = sqrt(6 / (fan_in + fan_out)),
// zero biases. Deterministic in seed.
void glorot_uniform_init(const NetworkSpec& net, uint64_t seed, float* params);

// Floating-point operations (multiply and add counted separately) of the convolutions and
// dense layers for one batch: forward, and backward (data + weights; the first conv/dense layer
// has no backward-data pass: nothing below it needs a gradient). Used for GFLOP/s figures.
struct FlopCount {
  double forward = 0, backward = 0;
};
FlopCount count_flops(const NetworkSpec& net, int batch);

}  // namespace ts
