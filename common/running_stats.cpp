#include "running_stats.h"

#include <stdexcept>

namespace ts {

void update_running_stats(const NetworkSpec& net, const float* sum, int64_t groups, float* params) {
  if (groups < 1)
    throw std::invalid_argument("running statistics need at least one sample group, got " +
                                std::to_string(groups));
  for (const LayerSpec& l : net.layers) {
    if (l.kind != LayerKind::kBatchNorm) continue;
    const double m = double(l.bn_momentum);
    // The shift, then running_mean and running_var (network.h's flat order).
    for (int k = 1; k <= 2; ++k) {
      const ParamSpec& p = net.params[size_t(l.bias_param + k)];
      if (!p.is_buffer()) throw std::logic_error(l.name + ": running statistics are not after the shift");
      for (size_t i = p.offset; i < p.offset + p.size; ++i) {
        const double batch_value = double(sum[i]) / double(groups);
        params[i] = float((1.0 - m) * double(params[i]) + m * batch_value);
      }
    }
  }
}

}  // namespace ts
