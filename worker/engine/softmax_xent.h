// Softmax cross-entropy on plain row-major logits {N, K}.
#pragma once
#include <cstdint>

namespace ts {

struct XentResult {
  double loss_sum = 0;
  int correct = 0;
};

// loss_i = logsumexp(logits_i) - logits_i[label_i]; diff = loss_scale * (softmax - onehot).
// With label smoothing s (PyTorch's CrossEntropyLoss(label_smoothing=s)): the target is
// (1 - s) onehot + s / k, so loss_i = (1 - s)(lse - z_label) + s (lse - mean_j z_j) and
// diff = loss_scale * (softmax - target); s = 0 is the plain form, bit for bit.
// diff may be null (evaluation). Labels must be in [0, k).
XentResult softmax_xent(const float* logits, const int32_t* labels, int n, int k,
                        float loss_scale, float* diff, double label_smoothing = 0);

}  // namespace ts
