#include "state_update.h"

#include "lookahead.h"
#include "running_stats.h"

namespace ts {

double update_state(const NetworkSpec& net, Optimizer& optimizer, float* params, const float* sum,
                    int64_t groups, int64_t steps_done, int64_t total_steps) {
  const OptimizerConfig& c = optimizer.config();
  const double lr_factor = lr_schedule_factor(c.lr_schedule, steps_done, total_steps);
  optimizer.step(params, sum, lr_factor);
  update_running_stats(net, sum, groups, params);
  if (c.lookahead_every > 0)
    lookahead_update(params, optimizer.mutable_slot("lookahead")->data(), net.num_params,
                     steps_done + 1, total_steps, c.lookahead_every);
  return lr_factor;
}

}  // namespace ts
