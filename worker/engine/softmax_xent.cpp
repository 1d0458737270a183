#include "softmax_xent.h"

#include <cmath>

namespace ts {

XentResult softmax_xent(const float* logits, const int32_t* labels, int n, int k,
                        float loss_scale, float* diff) {
  XentResult r;
  for (int i = 0; i < n; ++i) {
    const float* z = logits + size_t(i) * k;
    int arg = 0;
    for (int j = 1; j < k; ++j)
      if (z[j] > z[arg]) arg = j;
    const double zmax = z[arg];
    double sum = 0;
    for (int j = 0; j < k; ++j) sum += std::exp(double(z[j]) - zmax);
    const double lse = zmax + std::log(sum);
    r.loss_sum += lse - double(z[labels[i]]);
    r.correct += (arg == labels[i]);
    if (diff) {
      float* d = diff + size_t(i) * k;
      for (int j = 0; j < k; ++j) {
        const double p = std::exp(double(z[j]) - lse);
        d[j] = float(loss_scale * (p - (j == labels[i] ? 1.0 : 0.0)));
      }
    }
  }
  return r;
}

}  // namespace ts
