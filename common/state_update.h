// The coordinator's whole update of the model state after a step's gradient sum, in order:
//   1. the optimizer step at the schedule's learning rate (t = steps done before it),
//   2. the batch-norm running statistics from the sum (common/running_stats.h),
//   3. the lookahead EMA when the optimizer keeps one (common/lookahead.h, s = t + 1).
// One function, so the training run and the tests that resume it do the same thing.
#pragma once
#include <cstdint>

#include "network.h"
#include "optimizer.h"

namespace ts {

// Updates params (net.num_params floats) from sum, the step's summed gradient over `groups`
// batch-norm groups, as the `steps_done + 1`-th update of a run of `total_steps`. Returns
// the schedule's learning-rate factor it used.
double update_state(const NetworkSpec& net, Optimizer& optimizer, float* params, const float* sum,
                    int64_t groups, int64_t steps_done, int64_t total_steps);

}  // namespace ts
