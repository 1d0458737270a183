#include "divergence_guard.h"

#include <cstdio>

#include "float_packing.h"

namespace ts {

std::string DivergenceGuard::first_nonfinite(const float* values) const {
  const size_t n = net_.num_params;
  const size_t bad = ts::first_nonfinite(reinterpret_cast<const char*>(values), n);
  if (bad == n) return "";
  std::string where = "flat index " + std::to_string(bad);
  for (const ParamSpec& p : net_.params)
    if (bad >= p.offset && bad < p.offset + p.size) {
      where = p.name + " element " + std::to_string(bad - p.offset) + " (" + where + ")";
      break;
    }
  char value[32];
  std::snprintf(value, sizeof value, "%g", double(values[bad]));
  return std::string(value) + " at " + where;
}

void DivergenceGuard::keep(const std::vector<float>& params, const Optimizer& optimizer) {
  params_ = params;  // same size every step: no allocation after the first
  optimizer.snapshot_into(&optimizer_);
}

std::string DivergenceGuard::check_state(const std::vector<float>& params,
                                         const Optimizer& optimizer) const {
  std::string bad = first_nonfinite(params.data());
  if (!bad.empty()) return "the parameters: " + bad;
  for (const OptimizerSlot& slot : optimizer.slots()) {
    bad = first_nonfinite(slot.values.data());
    if (!bad.empty()) return "the optimizer state '" + slot.name + "': " + bad;
  }
  return "";
}

void DivergenceGuard::restore(std::vector<float>* params, Optimizer* optimizer) const {
  *params = params_;
  optimizer->restore(optimizer_);
}

}  // namespace ts
