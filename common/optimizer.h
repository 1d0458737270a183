// Optimizers on the one flat float buffer of parameters, as the coordinator applies them after
// averaging the workers' gradients. Plain C++, no oneDNN, no protobuf: the checkpoint code
// (checkpoint.h) turns an OptimizerSnapshot into named tensors.
//
// The math is Keras' (tf.keras optimizer_v2), so a run here and a Keras run agree step by step:
//   Adam ("epsilon hat" form), t = iterations after this step:
//     lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//     m = beta1 * m + (1 - beta1) * g
//     v = beta2 * v + (1 - beta2) * g^2
//     p -= lr_t * m / (sqrt(v) + epsilon)
//   SGD:           p -= lr * g
//   SGD, momentum: velocity = momentum * velocity - lr * g;  p += velocity
// and, for airbench94's recipe, PyTorch's torch.optim.SGD(momentum, nesterov=True, weight_decay):
//   SGD, Nesterov: g' = g + wd * p;  buf = momentum * buf + g';  p -= lr * (g' + momentum * buf)
//
// Parameter groups, as PyTorch's param_groups: batch-norm shifts (ParamSpec::Role::kBnShift)
// learn at lr * bias_lr_scale, everything else at lr. Per group g, with sched(t) the
// learning-rate schedule's factor (lr_schedule_factor) at t updates done before this one:
//   L_g = lr * lr_scale_g * sched(t)        wd_g = weight_decay / (lr * lr_scale_g)
// so L_g * wd_g = weight_decay * sched(t) is the same in every group (airbench's choice; the
// schedule scales only the learning rate, as PyTorch's LambdaLR does). weight_decay is that
// product at sched 1 ("wd_total"; without momentum, the share of each weight decayed per
// step); recipe_sgd turns the recipe's units into it. With weight decay, g' replaces g in the other SGD forms too.
// Never touched: frozen weights (ParamSpec::frozen), buffers (ParamSpec::is_buffer: the
// running statistics) and parameters set untrainable (set_trainable: PyTorch's
// requires_grad=False, skipped entirely, their slots kept as they are).
// Scalar factors are computed once per step in double; the per-element update runs in float.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "network.h"

namespace ts {

struct OptimizerConfig {
  std::string kind = "adam";  // "adam" or "sgd"
  double learning_rate = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;  // Adam (Keras defaults)
  double momentum = 0.0;                             // SGD; 0 means no velocity slot
  bool nesterov = false;          // SGD: PyTorch's Nesterov form (needs momentum > 0)
  double weight_decay = 0.0;      // SGD: L_g * wd_g, the same in every group (see above)
  double bias_lr_scale = 1.0;     // lr multiplier of the batch-norm shifts' group
  std::string lr_schedule = "constant";  // see lr_schedule_factor
  int lookahead_every = 0;        // >0: keeps a "lookahead" slot (common/lookahead.h)

  // Throws std::invalid_argument with one sentence naming the flag (--optimizer, --lr,
  // --beta1, --beta2, --epsilon, --momentum, --nesterov, --weight-decay, --bias-lr-scale,
  // --lr-schedule, --lookahead-every) and the bad value.
  void validate() const;
};

// Known optimizer kinds: "adam", "sgd".
std::vector<std::string> optimizer_kinds();

// Known learning-rate schedules: "constant", "triangular".
std::vector<std::string> lr_schedules();

// The schedule's factor of the learning rate for the update made after `steps_done` updates
// of a run of `total_steps`:
//   "constant":   1
//   "triangular": airbench's, piecewise linear through (0, 0.2), (floor(0.23 T), 1), (T, 0.07)
//                 (held at 0.07 beyond T). Needs total_steps >= 1.
// Throws std::invalid_argument for an unknown schedule or a triangular one without steps.
double lr_schedule_factor(const std::string& schedule, int64_t steps_done, int64_t total_steps);

// airbench's hyper-parameters are given per 1024 examples, for PyTorch's SGD with momentum m:
//   kilostep = 1024 * (1 + 1 / (1 - m))
//   learning_rate = lr / kilostep      weight_decay (wd_total) = wd * batch / kilostep
// (airbench94: lr 11.5, wd 0.0153, momentum 0.85, batch 1024).
struct SgdHyper {
  double learning_rate = 0;
  double weight_decay = 0;
};
SgdHyper recipe_sgd(double lr, double wd, double momentum, int batch);

// A stretch of the flat buffer the optimizer updates alike: one parameter tensor.
struct UpdateRange {
  size_t offset = 0, size = 0;
  double lr_scale = 1.0;     // its group's multiplier of the learning rate
  bool trainable = true;     // false: skipped entirely (set_trainable)
};

// What the optimizer trains of `net`: one range per parameter that is neither frozen nor a
// buffer, batch-norm shifts at lr_scale config.bias_lr_scale, the rest at 1.
std::vector<UpdateRange> update_ranges(const NetworkSpec& net, const OptimizerConfig& config);

// One per-parameter state buffer ("m", "v" or "velocity"), in the flat layout of the params.
struct OptimizerSlot {
  std::string name;
  std::vector<float> values;
};

// Everything an optimizer needs to continue where it stopped: what a checkpoint holds.
struct OptimizerSnapshot {
  OptimizerConfig config;
  int64_t iterations = 0;
  std::vector<OptimizerSlot> slots;  // in slot_names(config) order
};

// The slots an optimizer with this config keeps: Adam {"m", "v"}, SGD with momentum
// {"velocity"}, or {"momentum_buffer"} (PyTorch's name and sign) when Nesterov, plain SGD
// none; then "lookahead" (the EMA of the whole state) when lookahead_every > 0.
std::vector<std::string> slot_names(const OptimizerConfig& config);

class Optimizer {
 public:
  virtual ~Optimizer();

  // One update of params[0, size()) with grad[0, size()); the buffers must not overlap.
  // lr_factor multiplies every group's learning rate (the schedule's, lr_schedule_factor).
  void step(float* params, const float* grad, double lr_factor = 1.0);

  // PyTorch's requires_grad: an untrainable parameter is skipped by every later step (no
  // decay, no slot update). Throws std::invalid_argument when `param` is not one this
  // optimizer trains (frozen, a buffer, or built without the network).
  void set_trainable(const ParamSpec& param, bool trainable);
  const std::vector<UpdateRange>& ranges() const { return ranges_; }

  int64_t iterations() const { return iterations_; }  // updates applied so far
  const OptimizerConfig& config() const { return config_; }
  size_t size() const { return size_; }                 // floats per buffer

  OptimizerSnapshot snapshot() const;
  // The same into `out`, reusing its buffers (no allocation once sized): the coordinator
  // keeps the state before each step, so a step that diverges can be undone.
  void snapshot_into(OptimizerSnapshot* out) const;
  const std::vector<OptimizerSlot>& slots() const { return slots_; }
  // The slot's values to change in place (the lookahead EMA), or nullptr without that slot.
  std::vector<float>* mutable_slot(const std::string& name);

  // Continues from a snapshot: takes its iterations and slot values, keeps this optimizer's
  // hyper-parameters (so a resumed run may change, say, the learning rate). Throws
  // std::invalid_argument, changing nothing, when the kind, the slot names or the slot
  // sizes do not match this optimizer.
  void restore(const OptimizerSnapshot& snapshot);

 protected:
  Optimizer(OptimizerConfig config, size_t size, std::vector<UpdateRange> ranges);
  // The update of one range, its learning rate L_g and decay wd_g already worked out.
  virtual void update(float* params, const float* grad, const UpdateRange& range, double lr,
                      double weight_decay) = 0;
  // Once per step, before the ranges (Adam's bias correction).
  virtual double step_lr(double lr) const { return lr; }

  OptimizerConfig config_;
  size_t size_;
  int64_t iterations_ = 0;
  std::vector<OptimizerSlot> slots_;  // zero-filled, in slot_names(config_) order
  std::vector<UpdateRange> ranges_;
};

// Validates the config (see OptimizerConfig::validate) and builds the optimizer with zeroed
// slots for num_params floats, every one trained in one group (lr scale 1): for flat buffers
// without a network (tests, benches).
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, size_t num_params);
// The same for `net`'s parameters: the groups, frozen weights and buffers of update_ranges.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, const NetworkSpec& net);

// airbench's whitening bias: the biases of layers whose weight is frozen. At the start of
// epoch `epoch` (0-based) they are trainable iff epoch < whiten_bias_epochs; with
// whiten_bias_epochs 0 nothing changes. Returns how many parameters it set.
int set_whitening_bias_for_epoch(Optimizer& optimizer, const NetworkSpec& net, int64_t epoch,
                                 int whiten_bias_epochs);

}  // namespace ts
