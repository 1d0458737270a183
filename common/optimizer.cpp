#include "optimizer.h"

#include <algorithm>
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

std::string number(double x) {
  std::ostringstream s;
  s << x;
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
  Adam(const OptimizerConfig& config, size_t size, std::vector<UpdateRange> ranges)
      : Optimizer(config, size, std::move(ranges)) {}

 protected:
  double step_lr(double lr) const override {
    const double t = double(iterations_);
    return lr * std::sqrt(1.0 - std::pow(config_.beta2, t)) / (1.0 - std::pow(config_.beta1, t));
  }
  void update(float* params, const float* grad, const UpdateRange& r, double lr_t,
              double /*weight_decay: refused for Adam by validate*/) override {
    const OptimizerConfig& c = config_;
    const float lr_tf = float(lr_t), eps = float(c.epsilon);
    const float b1 = float(c.beta1), one_minus_b1 = float(1.0 - c.beta1);
    const float b2 = float(c.beta2), one_minus_b2 = float(1.0 - c.beta2);
    adam_update(params + r.offset, grad + r.offset, slots_[0].values.data() + r.offset,
                slots_[1].values.data() + r.offset, r.size, lr_tf, eps, b1, one_minus_b1, b2,
                one_minus_b2);
  }
};

class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerConfig& config, size_t size, std::vector<UpdateRange> ranges)
      : Optimizer(config, size, std::move(ranges)) {}

 protected:
  void update(float* params, const float* grad, const UpdateRange& r, double lr_g,
              double weight_decay) override {
    float* __restrict__ p = params + r.offset;
    const float* __restrict__ g = grad + r.offset;
    const size_t n = r.size;
    const float lr = float(lr_g), wd = float(weight_decay);
    // Without decay g' is g itself: no term is added, so the older runs round as before.
    const bool decay = weight_decay != 0.0;
    if (config_.momentum == 0.0) {
      if (decay) {
        for (size_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
      } else {
        for (size_t i = 0; i < n; ++i) p[i] -= lr * g[i];
      }
      return;
    }
    const float mu = float(config_.momentum);
    float* __restrict__ buf = slots_[0].values.data() + r.offset;
    if (config_.nesterov) {
      // PyTorch: buf = mu * buf + g';  p -= lr * (g' + mu * buf).
      for (size_t i = 0; i < n; ++i) {
        const float gd = decay ? g[i] + wd * p[i] : g[i];
        const float b = mu * buf[i] + gd;
        buf[i] = b;
        p[i] -= lr * (gd + mu * b);
      }
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      const float gd = decay ? g[i] + wd * p[i] : g[i];
      const float vel = mu * buf[i] - lr * gd;
      buf[i] = vel;
      p[i] += vel;
    }
  }
};

}  // namespace

std::vector<std::string> optimizer_kinds() { return {"adam", "sgd"}; }

std::vector<std::string> lr_schedules() { return {"constant", "triangular"}; }

double lr_schedule_factor(const std::string& schedule, int64_t steps_done, int64_t total_steps) {
  if (schedule == "constant") return 1.0;
  if (schedule != "triangular")
    throw std::invalid_argument("--lr-schedule must be one of constant, triangular, got '" +
                                schedule + "'");
  if (total_steps < 1)
    throw std::invalid_argument("--lr-schedule triangular needs the run's total steps, got " +
                                std::to_string(total_steps));
  // np.interp over the knots (0, 0.2), (peak, 1.0), (T, 0.07), flat outside them.
  const double t = double(std::max<int64_t>(0, steps_done));
  const double total = double(total_steps);
  const double peak = std::floor(0.23 * total);
  if (t >= total) return 0.07;
  if (t < peak) return 0.2 + (1.0 - 0.2) * (t / peak);
  return 1.0 + (0.07 - 1.0) * ((t - peak) / (total - peak));
}

SgdHyper recipe_sgd(double lr, double wd, double momentum, int batch) {
  const double kilostep = 1024.0 * (1.0 + 1.0 / (1.0 - momentum));
  return {lr / kilostep, wd * double(batch) / kilostep};
}

std::vector<UpdateRange> update_ranges(const NetworkSpec& net, const OptimizerConfig& config) {
  std::vector<UpdateRange> out;
  for (const ParamSpec& p : net.params) {
    if (p.frozen || p.is_buffer()) continue;
    const double scale = p.role == ParamSpec::Role::kBnShift ? config.bias_lr_scale : 1.0;
    out.push_back({p.offset, p.size, scale, true});
  }
  return out;
}

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
  if (nesterov && (kind != "sgd" || !(momentum > 0.0))) {
    throw std::invalid_argument("--nesterov needs --optimizer sgd with --momentum above 0, got --optimizer " +
                                kind + " --momentum " + number(momentum));
  }
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay)) {
    throw std::invalid_argument(flag_error("--weight-decay", "0 or more", weight_decay));
  }
  if (weight_decay > 0.0 && kind != "sgd") {
    throw std::invalid_argument("--weight-decay applies to --optimizer sgd only (this Adam is Keras' and "
                                "has none), got --optimizer " + kind);
  }
  if (!(bias_lr_scale > 0.0) || !std::isfinite(bias_lr_scale)) {
    throw std::invalid_argument(flag_error("--bias-lr-scale", "positive", bias_lr_scale));
  }
  if (lr_schedule != "constant" && lr_schedule != "triangular") {
    throw std::invalid_argument("--lr-schedule must be one of constant, triangular, got '" +
                                lr_schedule + "'");
  }
  if (lookahead_every < 0) {
    throw std::invalid_argument(flag_error("--lookahead-every", "0 (off) or more", lookahead_every));
  }
}

std::vector<std::string> slot_names(const OptimizerConfig& config) {
  std::vector<std::string> names;
  if (config.kind == "adam") names = {"m", "v"};
  if (config.kind == "sgd" && config.momentum > 0.0)
    names = {config.nesterov ? "momentum_buffer" : "velocity"};
  if (config.lookahead_every > 0) names.push_back("lookahead");
  return names;
}

Optimizer::Optimizer(OptimizerConfig config, size_t size, std::vector<UpdateRange> ranges)
    : config_(std::move(config)), size_(size), ranges_(std::move(ranges)) {
  for (auto& name : slot_names(config_)) slots_.push_back({name, std::vector<float>(size_, 0.f)});
}

void Optimizer::step(float* params, const float* grad, double lr_factor) {
  ++iterations_;
  const OptimizerConfig& c = config_;
  const double lr = step_lr(c.learning_rate);
  for (const UpdateRange& r : ranges_) {
    if (!r.trainable) continue;
    // wd_g = weight_decay / (lr * lr_scale_g): the schedule is not in it (LambdaLR scales lr).
    const double decay = c.weight_decay > 0.0 ? c.weight_decay / (c.learning_rate * r.lr_scale) : 0.0;
    update(params, grad, r, lr * r.lr_scale * lr_factor, decay);
  }
}

void Optimizer::set_trainable(const ParamSpec& param, bool trainable) {
  for (UpdateRange& r : ranges_)
    if (r.offset == param.offset && r.size == param.size) {
      r.trainable = trainable;
      return;
    }
  throw std::invalid_argument("parameter '" + param.name + "' is not trained by this optimizer "
                              "(frozen, a buffer, or the optimizer was built without the network)");
}

std::vector<float>* Optimizer::mutable_slot(const std::string& name) {
  for (auto& s : slots_)
    if (s.name == name) return &s.values;
  return nullptr;
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
                                want + " ] (did --momentum, --nesterov or --lookahead-every change?)");
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

namespace {

std::unique_ptr<Optimizer> build(const OptimizerConfig& config, size_t num_params,
                                 std::vector<UpdateRange> ranges) {
  config.validate();
  if (config.kind == "adam") return std::make_unique<Adam>(config, num_params, std::move(ranges));
  return std::make_unique<Sgd>(config, num_params, std::move(ranges));
}

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, size_t num_params) {
  return build(config, num_params, {UpdateRange{0, num_params, 1.0, true}});
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, const NetworkSpec& net) {
  return build(config, net.num_params, update_ranges(net, config));
}

int set_whitening_bias_for_epoch(Optimizer& optimizer, const NetworkSpec& net, int64_t epoch,
                                 int whiten_bias_epochs) {
  if (whiten_bias_epochs <= 0) return 0;
  int set = 0;
  for (const LayerSpec& l : net.layers) {
    if (l.weight_param < 0 || l.bias_param < 0 || !net.params[size_t(l.weight_param)].frozen) continue;
    optimizer.set_trainable(net.params[size_t(l.bias_param)], epoch < whiten_bias_epochs);
    ++set;
  }
  return set;
}

}  // namespace ts
