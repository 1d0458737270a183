// Batch-norm running statistics, the coordinator's half of the contract at the top of
// common/network.h: after a step's sum, each running_mean / running_var slot of the summed
// gradient holds the sum over the step's `groups` sample groups of their mean / unbiased
// variance; then per channel
//   batch_value = sum / groups
//   running = (1 - momentum) * running + momentum * batch_value   (LayerSpec::bn_momentum)
// computed in double and stored as float. The optimizer never touches these slots.
#pragma once
#include <cstdint>

#include "network.h"

namespace ts {

// Updates every batch-norm layer's running statistics in params from sum (both
// net.num_params floats). groups >= 1; a network without batch norm is left as it is.
void update_running_stats(const NetworkSpec& net, const float* sum, int64_t groups, float* params);

}  // namespace ts
