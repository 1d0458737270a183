// airbench's lookahead (its LookaheadState): every K updates the whole state is pulled
// toward an exponential moving average of itself and replaced by it. With s the updates done
// after this one and T the run's total:
//   if s % K == 0:  decay = 0.95^5 * (s / T)^3
//                   ema = lerp(ema, state, 1 - decay)      (torch.lerp: ema + (1-decay)(state-ema))
//                   state = ema
//   if s == T:      decay 1 besides: state = ema (the run ends on the average)
// "state" is every float of the flat buffer: weights, biases, batch-norm shifts and running
// statistics alike. The EMA starts as the state at the first such update (s == K); airbench
// starts it from the state before training, which differs by a weight of (K / T)^3 * 0.77
// at that update (1e-7 for airbench94). The EMA lives in the optimizer's "lookahead" slot, so
// checkpoints, the divergence guard's undo and resume carry it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ts {

// airbench's alpha schedule: 0.95^5 * (steps_done / total_steps)^3.
double lookahead_decay(int64_t steps_done, int64_t total_steps);

// The lookahead after the update that brought the run to `steps_done` of `total_steps`,
// over state[0, n) and ema[0, n) (every > 0). Returns true when it changed anything.
bool lookahead_update(float* state, float* ema, size_t n, int64_t steps_done, int64_t total_steps,
                      int every);

}  // namespace ts
