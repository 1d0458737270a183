// The reduce of a training step: the workers' gradients summed in rank order, straight from
// their wire bytes. Rank order always, whatever order the gradients arrived in, so the sum
// (and so the run) is the same on every repetition. Workers send d(sum of their losses)/
// d(params) / global batch, so the plain sum is the batch-mean gradient whatever P is.
#pragma once
#include <cstddef>
#include <vector>

#include "trainer.pb.h"

namespace ts {

class GradientReducer {
 public:
  explicit GradientReducer(size_t num_params) : sum_(num_params) {}

  // Sums the StepResults of `ranks` (ascending) in `by_rank`; a result without a gradient
  // (an empty share) adds nothing. The sizes were checked as the messages were read.
  const std::vector<float>& reduce(const std::vector<threadsplit::WorkerMessage>& by_rank,
                                   const std::vector<int>& ranks);
  std::vector<float>& sum() { return sum_; }

 private:
  std::vector<float> sum_;
};

}  // namespace ts
