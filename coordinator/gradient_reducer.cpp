#include "gradient_reducer.h"

#include <algorithm>

#include "float_packing.h"

namespace ts {

const std::vector<float>& GradientReducer::reduce(const std::vector<threadsplit::WorkerMessage>& by_rank,
                                                  const std::vector<int>& ranks) {
  std::fill(sum_.begin(), sum_.end(), 0.f);
  for (int r : ranks) {
    const std::string& g = by_rank[size_t(r)].step().gradient();
    if (!g.empty()) add_packed_floats(g, sum_.data(), sum_.size());
  }
  return sum_;
}

}  // namespace ts
