// A replica of a NetworkSpec as oneDNN primitives: created once per batch size, executed
// every step, activations kept in the layouts oneDNN picks (format_tag::any) with reorders
// only at the edges (input images in, parameters in, gradients out).
//
// The flat parameter / gradient buffers follow NetworkSpec's documented order and layouts.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "network.h"

namespace ts {

struct StepStats {
  double loss_sum = 0;   // sum over the batch of the per-sample cross-entropy
  int correct = 0;       // samples whose arg-max logit is the label
  double forward_s = 0;  // forward + loss
  double backward_s = 0; // backward, including the gradient write-out to the flat buffer
  double send_s = 0;     // inside backward, in train_step's on_ready (sending buckets)
};

struct ModelOptions {
  // Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions whose channels are multiples of 16
  // (oneDNN's jit_wino_4x3): measured 1.5x faster than direct on seed_cnn's conv2, with
  // rounding of the same order as direct (tests compare both to the reference). Off: direct
  // convolution everywhere.
  bool winograd = true;
  // PyTorch's CrossEntropyLoss(label_smoothing): softmax_xent.h. Training loss and gradient
  // only; evaluation reports the plain cross-entropy.
  double label_smoothing = 0;
  // "f32", or "bf16": convolutions, dense layers, pooling, batch norm and GELU on bf16
  // activations and weights (oneDNN's jit_bf16 kernels), weight gradients, batch-norm
  // statistics and the loss in f32, the parameters kept in f32 by the caller. The Model
  // refuses bf16 where the CPU has neither avx512_bf16 nor AMX.
  std::string precision = "f32";
};

class Model {
 public:
  // Builds primitives lazily per batch size; batches may not exceed max_batch.
  Model(const NetworkSpec& net, int max_batch, ModelOptions options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const NetworkSpec& spec() const { return net_; }

  // Copies a flat parameter buffer (num_params floats) into the buffer the primitives load
  // their weights from; the next pass reloads them.
  void set_params(const float* flat);

  // That buffer itself (num_params floats, NetworkSpec's order and layouts), for a caller that
  // fills it in place instead of copying through set_params: the worker unpacks the wire's
  // bytes straight into it. Taking it marks the parameters changed: the next pass reloads
  // them, so write them all before the next train_step or evaluate.
  float* params_to_overwrite();

  // Forward, softmax cross-entropy, backward on n samples: images are NCHW floats
  // (n x 3 x 32 x 32), labels in [0, num_classes). Writes the gradient of
  // loss_scale * sum_i loss_i into grad (num_params floats, overwritten). With `on_ready`,
  // backward runs layer by layer and calls on_ready(f) whenever grad[f, num_params) became
  // final, last with f = 0 (common/gradient_buckets.h); its time is left out of backward_s
  // and counted in send_s.
  StepStats train_step(const float* images, const int32_t* labels, int n, float loss_scale,
                       float* grad, const std::function<void(size_t)>& on_ready = {});

  // Forward and loss only, in evaluation mode (batch norm with the running statistics: a
  // network with batch norm keeps a separate forward-only replica per batch size for this).
  StepStats evaluate(const float* images, const int32_t* labels, int n);

  // Logits of the last forward pass (n x num_classes, row-major), for tests.
  std::vector<float> last_logits() const;

  // The oneDNN implementation chosen for each primitive of batch size n ("jit:avx512_core").
  std::vector<std::string> implementation_names(int n);

 private:
  struct Impl;
  struct BatchNet;
  BatchNet& net_for(int n, bool training = true);
  StepStats forward_and_loss(BatchNet& bn, const float* images, const int32_t* labels, int n,
                             float loss_scale, bool with_gradient);
  NetworkSpec net_;
  int max_batch_;
  ModelOptions options_;
  std::unique_ptr<Impl> impl_;
};

// The number of threads an OpenMP parallel region really runs with right now (counts them).
int omp_team_size();

}  // namespace ts
