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
// Scalar factors are computed once per step in double; the per-element update runs in float.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ts {

struct OptimizerConfig {
  std::string kind = "adam";  // "adam" or "sgd"
  double learning_rate = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;  // Adam (Keras defaults)
  double momentum = 0.0;                             // SGD; 0 means no velocity slot

  // Throws std::invalid_argument with one sentence naming the flag (--optimizer, --lr,
  // --beta1, --beta2, --epsilon, --momentum) and the bad value.
  void validate() const;
};

// Known optimizer kinds: "adam", "sgd".
std::vector<std::string> optimizer_kinds();

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
// {"velocity"}, plain SGD none.
std::vector<std::string> slot_names(const OptimizerConfig& config);

class Optimizer {
 public:
  virtual ~Optimizer();

  // One update of params[0, size()) with grad[0, size()); the buffers must not overlap.
  virtual void step(float* params, const float* grad) = 0;

  int64_t iterations() const { return iterations_; }  // updates applied so far
  const OptimizerConfig& config() const { return config_; }
  size_t size() const { return size_; }                 // floats per buffer

  OptimizerSnapshot snapshot() const;
  // The same into `out`, reusing its buffers (no allocation once sized): the coordinator
  // keeps the state before each step, so a step that diverges can be undone.
  void snapshot_into(OptimizerSnapshot* out) const;
  const std::vector<OptimizerSlot>& slots() const { return slots_; }

  // Continues from a snapshot: takes its iterations and slot values, keeps this optimizer's
  // hyper-parameters (so a resumed run may change, say, the learning rate). Throws
  // std::invalid_argument, changing nothing, when the kind, the slot names or the slot
  // sizes do not match this optimizer.
  void restore(const OptimizerSnapshot& snapshot);

 protected:
  Optimizer(OptimizerConfig config, size_t size);

  OptimizerConfig config_;
  size_t size_;
  int64_t iterations_ = 0;
  std::vector<OptimizerSlot> slots_;  // zero-filled, in slot_names(config_) order
};

// Validates the config (see OptimizerConfig::validate) and builds the optimizer with zeroed
// slots for num_params floats.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, size_t num_params);

}  // namespace ts
