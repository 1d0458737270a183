// What a worker sends in an --exchange-only run (the benchmark of the exchange alone,
// bench/exchange_bench.sh): no forward or backward, only a gradient of the model's size so
// that the coordinator's whole path (checks, sum, optimizer, broadcast) runs as in training.
//
// Every float of a share's gradient is the same tiny value, scaled by the share's part of the
// global batch as a real share of the batch-mean gradient is: the shares of a step sum to
// kExchangeOnlyGradient in every slot whatever P (exactly, where the shares are powers of two
// of the batch), so the parameters move by a known amount (-lr x kExchangeOnlyGradient per
// step under plain SGD), finite and far below any --max-grad-norm a run would set.
#pragma once

namespace ts {

constexpr float kExchangeOnlyGradient = 0x1p-20f;  // ~9.5e-7

// The value of every float of the gradient of a share of `samples` of a global batch.
inline float exchange_only_gradient(int samples, int global_batch) {
  return global_batch > 0 ? kExchangeOnlyGradient * float(samples) / float(global_batch) : 0.f;
}

}  // namespace ts
