// The coordinator's check that the run has not diverged, around every update:
//   the gradient sum (every worker's gradient was finite on the wire, yet a sum of finite
//   floats can overflow) -> keep the state -> optimizer step -> the parameters and every
//   optimizer slot (Adam's v overflows on a finite gradient of 1e20 while the parameters
//   stay put) -> on a non-finite value, put the kept state back.
// The parameters include the batch-norm running statistics and the slots the lookahead EMA,
// both updated from the sum before the check (common/state_update.h): they are covered too.
// So the state a diverged run checkpoints is the last good one, never the poisoned one.
// Cost per step: one pass over the sum, one copy and one pass over the parameters and the
// slots (docs/reliability.md has the figures for tf_tutorial_cnn).
#pragma once
#include <string>
#include <vector>

#include "network.h"
#include "optimizer.h"

namespace ts {

class DivergenceGuard {
 public:
  explicit DivergenceGuard(const NetworkSpec& net) : net_(net) {}

  // "" when all net.num_params values are finite, else the first one that is not, by name:
  // "inf at conv1.weight element 3 (flat index 3)".
  std::string first_nonfinite(const float* values) const;

  // Before the update (the training run takes it before the gather, off the path where the
  // workers wait): keeps a copy of the parameters and the optimizer's state (buffers are
  // reused from step to step).
  void keep(const std::vector<float>& params, const Optimizer& optimizer);
  // After it: "" when the parameters and every slot are finite, else which is not and
  // where: "the parameters: nan at ..." or "the optimizer state 'v': inf at ...".
  std::string check_state(const std::vector<float>& params, const Optimizer& optimizer) const;
  // Puts the kept state back (after a check_state that failed).
  void restore(std::vector<float>* params, Optimizer* optimizer) const;

 private:
  const NetworkSpec& net_;
  std::vector<float> params_;
  OptimizerSnapshot optimizer_;
};

}  // namespace ts
