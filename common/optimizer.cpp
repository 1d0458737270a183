#include "optimizer.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace ts {

namespace {

std::string flag_error(const char* flag, const char* requirement, double got) {
  std::ostringstream s;
  s << flag << " must be " << requirement << ", got " << got;
  return s.str();
}

// A coefficient in [0, 1); written so that NaN fails too.
bool is_unit_fraction(double x) { return x >= 0.0 && x < 1.0; }

// The Adam update over n values: the coordinator runs it on every step's critical path, so
// it is compiled for AVX-512 and AVX2 as well as the baseline, chosen when the program loads
// (16 lanes instead of SSE2's 4: sqrt and division dominate). common/CMakeLists.txt compiles
// this file with -ffp-contract=off, so every version rounds exactly alike and a run gives the
// same parameters on any x86-64.
__attribute__((target_clones("avx512f", "avx2", "default")))
void adam_update(float* __restrict__ params, const float* __restrict__ grad,
                 float* __restrict__ m, float* __restrict__ v, size_t n, float lr, float eps,
                 float b1, float one_minus_b1, float b2, float one_minus_b2) {
  for (size_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = b1 * m[i] + one_minus_b1 * g;
    const float vi = b2 * v[i] + one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] -= lr * mi / (std::sqrt(vi) + eps);
  }
}

class Adam final : public Optimizer {
 public:
  Adam(const OptimizerConfig& config, size_t size) : Optimizer(config, size) {}

  void step(float* __restrict__ params, const float* __restrict__ grad) override {
    ++iterations_;
    const double t = double(iterations_);
    const OptimizerConfig& c = config_;
    const double lr_t =
        c.learning_rate * std::sqrt(1.0 - std::pow(c.beta2, t)) / (1.0 - std::pow(c.beta1, t));
    const float lr_tf = float(lr_t), eps = float(c.epsilon);
    const float b1 = float(c.beta1), one_minus_b1 = float(1.0 - c.beta1);
    const float b2 = float(c.beta2), one_minus_b2 = float(1.0 - c.beta2);
    adam_update(params, grad, slots_[0].values.data(), slots_[1].values.data(), size_, lr_tf, eps,
                b1, one_minus_b1, b2, one_minus_b2);
  }
};

class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerConfig& config, size_t size) : Optimizer(config, size) {}

  void step(float* __restrict__ params, const float* __restrict__ grad) override {
    ++iterations_;
    const float lr = float(config_.learning_rate);
    const size_t n = size_;
    if (slots_.empty()) {
      for (size_t i = 0; i < n; ++i) params[i] -= lr * grad[i];
      return;
    }
    const float mu = float(config_.momentum);
    float* __restrict__ velocity = slots_[0].values.data();
    for (size_t i = 0; i < n; ++i) {
      const float vel = mu * velocity[i] - lr * grad[i];
      velocity[i] = vel;
      params[i] += vel;
    }
  }
};

}  // namespace

std::vector<std::string> optimizer_kinds() { return {"adam", "sgd"}; }

void OptimizerConfig::validate() const {
  if (kind != "adam" && kind != "sgd") {
    throw std::invalid_argument("--optimizer must be one of adam, sgd, got '" + kind + "'");
  }
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate)) {
    throw std::invalid_argument(flag_error("--lr", "positive", learning_rate));
  }
  if (!is_unit_fraction(beta1)) throw std::invalid_argument(flag_error("--beta1", "in [0, 1)", beta1));
  if (!is_unit_fraction(beta2)) throw std::invalid_argument(flag_error("--beta2", "in [0, 1)", beta2));
  if (!(epsilon > 0.0) || !std::isfinite(epsilon)) {
    throw std::invalid_argument(flag_error("--epsilon", "positive", epsilon));
  }
  if (!is_unit_fraction(momentum)) {
    throw std::invalid_argument(flag_error("--momentum", "in [0, 1)", momentum));
  }
}

std::vector<std::string> slot_names(const OptimizerConfig& config) {
  if (config.kind == "adam") return {"m", "v"};
  if (config.kind == "sgd" && config.momentum > 0.0) return {"velocity"};
  return {};
}

Optimizer::Optimizer(OptimizerConfig config, size_t size) : config_(std::move(config)), size_(size) {
  for (auto& name : slot_names(config_)) slots_.push_back({name, std::vector<float>(size_, 0.f)});
}

Optimizer::~Optimizer() = default;

OptimizerSnapshot Optimizer::snapshot() const { return {config_, iterations_, slots_}; }

void Optimizer::snapshot_into(OptimizerSnapshot* out) const {
  out->config = config_;
  out->iterations = iterations_;
  out->slots = slots_;  // element-wise assignment: each slot's buffer is reused
}

void Optimizer::restore(const OptimizerSnapshot& snapshot) {
  if (snapshot.config.kind != config_.kind) {
    throw std::invalid_argument("optimizer state is for '" + snapshot.config.kind +
                                "', this run uses '" + config_.kind + "'");
  }
  if (snapshot.iterations < 0) {
    throw std::invalid_argument("optimizer state has a negative iteration count " +
                                std::to_string(snapshot.iterations));
  }
  std::string want, got;
  for (const auto& s : slots_) want += " " + s.name;
  for (const auto& s : snapshot.slots) got += " " + s.name;
  if (want != got) {
    throw std::invalid_argument("optimizer state has slots [" + got + " ], this run needs [" +
                                want + " ] (did --momentum change?)");
  }
  for (const auto& s : snapshot.slots) {
    if (s.values.size() != size_) {
      throw std::invalid_argument("optimizer slot '" + s.name + "' holds " +
                                  std::to_string(s.values.size()) + " values, expected " +
                                  std::to_string(size_));
    }
  }
  std::vector<OptimizerSlot> copy = snapshot.slots;  // may throw; nothing changed yet
  slots_.swap(copy);
  iterations_ = snapshot.iterations;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, size_t num_params) {
  config.validate();
  if (config.kind == "adam") return std::make_unique<Adam>(config, num_params);
  return std::make_unique<Sgd>(config, num_params);
}

}  // namespace ts
