// Softmax cross-entropy on plain row-major logits {N, K}.
#pragma once
#include <cstdint>

namespace ts {

struct XentResult {
  double loss_sum = 0;
  int correct = 0;
};

// loss_i = logsumexp(logits_i) - logits_i[label_i]; diff = loss_scale * (softmax - onehot).
// diff may be null (evaluation). Labels must be in [0, k).
XentResult softmax_xent(const float* logits, const int32_t* labels, int n, int k,
                        float loss_scale, float* diff);

}  // namespace ts
