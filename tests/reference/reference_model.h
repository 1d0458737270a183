// The reference training step: forward, softmax cross-entropy and backward of any
// ts::NetworkSpec, in double precision with the plain layers of reference_layers.h. The engine's
// loss and gradients are tested against this; tests/unit/test_reference_fd.cpp proves it right
// by finite differences.
#pragma once
#include <cstdint>
#include <vector>

#include "network.h"

namespace ts {

struct ReferenceResult {
  std::vector<double> logits;  // [n, num_classes]
  std::vector<double> losses;  // [n], per sample, not averaged
  double loss_sum = 0;         // sum of losses (not scaled)
  int correct = 0;             // samples whose first largest logit is the label
  std::vector<double> grad;    // flat, NetworkSpec order and layouts: d(loss_scale * loss_sum)
};

// One step on a batch: params_flat [net.num_params], images [n, C, H, W] (net.input),
// labels [n] in [0, num_classes). grad is the gradient of loss_scale * sum of the per-sample
// losses (loss_scale = 1/n gives the mean loss), with label smoothing as PyTorch's
// CrossEntropyLoss(label_smoothing). Batch norm runs in training mode (group statistics), and
// grad holds at its running-statistic slots the sums over the groups of the group means and
// unbiased variances (network.h), as the engine writes them. A frozen weight's gradient is 0.
// Throws std::invalid_argument on sizes or labels that do not fit the network.
ReferenceResult reference_train_step(const NetworkSpec& net, const std::vector<double>& params_flat,
                                     const std::vector<double>& images,
                                     const std::vector<int32_t>& labels, int n, double loss_scale,
                                     double label_smoothing = 0);

// The same from float buffers (the engine's), converted to double first.
ReferenceResult reference_train_step(const NetworkSpec& net, const std::vector<float>& params_flat,
                                     const std::vector<float>& images,
                                     const std::vector<int32_t>& labels, int n, double loss_scale,
                                     double label_smoothing = 0);

// Forward only (evaluation mode: batch norm with the running statistics): logits, losses, loss_sum, correct; grad is left empty.
ReferenceResult reference_forward(const NetworkSpec& net, const std::vector<double>& params_flat,
                                  const std::vector<double>& images,
                                  const std::vector<int32_t>& labels, int n);

}  // namespace ts
