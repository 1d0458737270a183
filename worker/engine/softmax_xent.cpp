#include "softmax_xent.h"

#include <cmath>

namespace ts {

XentResult softmax_xent(const float* logits, const int32_t* labels, int n, int k,
                        float loss_scale, float* diff, double label_smoothing) {
  const double ls = label_smoothing;
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
    if (ls == 0) {
      r.loss_sum += lse - double(z[labels[i]]);
    } else {
      double mean = 0;
      for (int j = 0; j < k; ++j) mean += double(z[j]);
      mean /= k;
      r.loss_sum += (1 - ls) * (lse - double(z[labels[i]])) + ls * (lse - mean);
    }
    r.correct += (arg == labels[i]);
    if (diff) {
      float* d = diff + size_t(i) * k;
      for (int j = 0; j < k; ++j) {
        const double p = std::exp(double(z[j]) - lse);
        const double target = ls == 0 ? (j == labels[i] ? 1.0 : 0.0)
                                      : (j == labels[i] ? 1.0 - ls : 0.0) + ls / k;
        d[j] = float(loss_scale * (p - target));
      }
    }
  }
  return r;
}

}  // namespace ts
