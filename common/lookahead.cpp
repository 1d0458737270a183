#include "lookahead.h"

#include <cmath>
#include <cstring>

namespace ts {

namespace {

// torch.lerp's two forms (aten's lerp): from the start for small weights, back from the end
// for large ones, so weight 1 gives `end` exactly.
void lerp_into(float* __restrict__ ema, const float* __restrict__ state, size_t n, float weight) {
  if (std::fabs(weight) < 0.5f) {
    for (size_t i = 0; i < n; ++i) ema[i] = ema[i] + weight * (state[i] - ema[i]);
  } else {
    const float rest = 1.f - weight;
    for (size_t i = 0; i < n; ++i) ema[i] = state[i] - (state[i] - ema[i]) * rest;
  }
}

}  // namespace

double lookahead_decay(int64_t steps_done, int64_t total_steps) {
  const double frac = double(steps_done) / double(total_steps);
  return std::pow(0.95, 5) * frac * frac * frac;
}

bool lookahead_update(float* state, float* ema, size_t n, int64_t steps_done, int64_t total_steps,
                      int every) {
  if (every <= 0 || steps_done < every) return false;  // no EMA yet
  const size_t bytes = n * sizeof(float);
  if (steps_done % every == 0) {
    if (steps_done == every) std::memcpy(ema, state, bytes);
    lerp_into(ema, state, n, float(1.0 - lookahead_decay(steps_done, total_steps)));
    std::memcpy(state, ema, bytes);
    return true;
  }
  if (steps_done == total_steps) {
    // decay 1: the EMA stays as it is and the state becomes it.
    std::memcpy(state, ema, bytes);
    return true;
  }
  return false;
}

}  // namespace ts
