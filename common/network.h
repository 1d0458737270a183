// The network *description*: layers, shapes, and where every parameter lives in the one flat
// float buffer. Plain data, no oneDNN, so the coordinator (optimizer, checkpoints) and the
// reference implementation in tests share it with the worker's engine.
//
// Flat parameter order: layers in order; per layer with parameters, the weight then the bias.
// Each tensor is stored row-major in PyTorch's layout:
//   conv weight  [out, in, kh, kw]      dense weight [out, in]      bias [out]
// A dense layer that follows a 3-D activation [C, H, W] flattens it in C, H, W order
// (PyTorch's x.flatten(1) of an NCHW tensor).
//   batch norm: [scale [C] ("<name>.weight", trained, only with bn_scale)], shift [C]
//               ("<name>.bias", trained), then the buffers running_mean [C] and running_var [C]
//               (never trained by the optimizer; see "Batch-norm statistics")
//
// Batch-norm statistics, and the same math for every split. A kBatchNorm layer normalizes
// over fixed groups of `bn_group` consecutive samples of a worker's share (ghost batch norm),
// never over "whatever this worker got": shares are dealt in whole groups
// (NetworkSpec::sample_granule), so a sample meets the same group mates whatever P is, and the
// global batch must be a multiple of the group. Training: y = (x - mean_g) / sqrt(var_g + eps)
// + shift, mean_g / var_g the biased statistics of the sample's group over (samples, H, W).
// Evaluation: the running statistics instead (PyTorch's eval mode).
// The running statistics travel in the gradient buffer: in a training step the worker writes,
// at the running_mean slot, the SUM over its groups of each group's mean and, at the
// running_var slot, the SUM over its groups of each group's UNBIASED variance
// (var_g * m / (m - 1), m = bn_group * H * W); these are not scaled by the loss scale. The
// coordinator sums them in rank order with the gradients, divides by the step's number of
// groups (global batch / bn_group) and updates running = (1 - momentum) * running +
// momentum * batch_value (PyTorch's convention: momentum 0.4 = airbench's 0.6).
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
  kBatchNorm,      // per-channel, over groups of bn_group samples; scale fixed at 1, shift trained
  kGelu,           // GELU, exact (erf) form: x * 0.5 * (1 + erf(x / sqrt 2))
  kScale,          // multiply by the constant `scale`
  kRelu,           // max(x, 0), on its own (conv and dense fuse theirs: `relu`)
  kAvgPool,        // average pooling; `avg_include_pad`: padding counts in the divisor
  kAdd,            // the sum of two inputs of one shape (a residual connection), optional `relu`
};

// LayerSpec::inputs: the network's input image.
constexpr int kNetworkInput = -1;

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
  bool bias = true;                 // conv / dense: has a bias tensor
  bool frozen = false;              // conv / dense: the weight is never trained (bias may be)
  bool dirac = false;               // conv: init makes filter i (i < in channels) the identity
  // Batch norm (see "Batch-norm statistics" above).
  int bn_group = 0;                 // samples per statistics group (>= 1)
  float bn_eps = 1e-5f;
  float bn_momentum = 0.1f;         // PyTorch's convention (weight of the new batch value)
  float scale = 1.f;                // kScale
  // LRN, oneDNN's convention: dst = src / (k + alpha / size * sum_{window} src^2)^beta,
  // window = `size` channels centred on the channel.
  int lrn_size = 0;
  float lrn_alpha = 0.f, lrn_beta = 0.f, lrn_k = 0.f;
  int weight_param = -1, bias_param = -1;  // indices into NetworkSpec::params, or -1
  // Where the layer reads from: empty = the previous layer's output (the image for layer 0),
  // as in every built-in net; else indices of earlier layers (or kNetworkInput). A kAdd reads
  // two; any other layer one. A layer's output may feed several later layers (a residual
  // fork): its gradient is the sum of theirs. The logits are the last layer's output.
  std::vector<int> inputs;
  bool bn_scale = false;            // kBatchNorm: a trained scale "<name>.weight" [C] (init 1),
                                    // before the shift (PyTorch's affine BatchNorm2d)
  bool avg_include_pad = false;     // kAvgPool: divide by the whole window (ONNX count_include_pad)
};

struct ParamSpec {
  std::string name;                 // "conv1.weight", "conv1.bias", ...
  std::vector<int64_t> shape;       // PyTorch layout (see top of file)
  size_t offset = 0;                // into the flat buffer, in floats
  size_t size = 0;                  // number of floats
  int fan_in = 0, fan_out = 0;      // Keras' definition, for Glorot init
  bool is_bias = false;             // a bias or a batch-norm shift (zero init, no Glorot)
  enum class Role { kWeight, kBias, kBnShift, kRunningMean, kRunningVar, kBnScale };
  Role role = Role::kWeight;
  bool frozen = false;              // never changed by the optimizer (a frozen weight)
  // Running statistics: not parameters of the loss; the optimizer never touches them.
  bool is_buffer() const { return role == Role::kRunningMean || role == Role::kRunningVar; }
};

struct NetworkSpec {
  std::string name;
  Shape3 input;                     // per-sample input, [3, 32, 32] for CIFAR-10
  int num_classes = 0;
  std::vector<LayerSpec> layers;    // logits come out of the last layer; loss is softmax CE
  std::vector<ParamSpec> params;
  size_t num_params = 0;            // total floats in the flat buffer
  std::string init = "glorot_uniform";  // init_params' scheme: "glorot_uniform" or "pytorch"

  // Shares of a global batch are dealt in whole multiples of this: the batch-norm group
  // (1 when the network has no batch norm). All its batch-norm layers share one group size.
  int sample_granule() const;
};

// Sets the batch-norm group of every batch-norm layer (--bn-group). Throws
// std::invalid_argument when group < 2 (an unbiased variance needs two samples) or the
// network has no batch norm.
void set_bn_group(NetworkSpec& net, int group);

// Known networks: "seed_cnn" (default), "tf_tutorial_cnn", "airbench94".
std::vector<std::string> network_names();

// Builds a network by name; throws std::invalid_argument naming the known ones otherwise.
NetworkSpec build_network(const std::string& name);

// The builder behind build_network: describe layers (shapes and param slots left empty),
// get back a spec with every shape inferred and every parameter placed. Throws
// std::invalid_argument when a layer does not fit its input.
NetworkSpec finish_network(std::string name, Shape3 input, int num_classes,
                           std::vector<LayerSpec> layers);

// The index of the layer each input of layer `i` comes from (kNetworkInput for the image):
// `inputs`, or the previous layer.
std::vector<int> layer_inputs(const NetworkSpec& net, size_t i);

// Keras defaults: Glorot-uniform weights, U(-l, l) with l = sqrt(6 / (fan_in + fan_out)),
// zero biases. Deterministic in seed.
void glorot_uniform_init(const NetworkSpec& net, uint64_t seed, float* params);

// PyTorch's defaults (torch.nn.Conv2d / Linear reset_parameters): weights
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt 5), biases zero (airbench's
// choice, not PyTorch's uniform bias), then dirac on layers marked so; batch-norm shift 0,
// running_mean 0, running_var 1. Deterministic in seed.
void pytorch_default_init(const NetworkSpec& net, uint64_t seed, float* params);

// The network's own scheme (NetworkSpec::init).
void init_params(const NetworkSpec& net, uint64_t seed, float* params);

// Floating-point operations (multiply and add counted separately) of the convolutions and
// dense layers for one batch: forward, and backward (data + weights; the first conv/dense layer
// has no backward-data pass: nothing below it needs a gradient). Used for GFLOP/s figures.
struct FlopCount {
  double forward = 0, backward = 0;
};
FlopCount count_flops(const NetworkSpec& net, int batch);

}  // namespace ts
