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

const std::vector<float>& GradientReducer::reduce_slots(const SharedPlane& plane, const std::vector<int>& ranks,
                                                        const std::vector<bool>& has_gradient) {
  acquire_from_peer();  // the slots were written before their results were sent
  std::fill(sum_.begin(), sum_.end(), 0.f);
  float* acc = sum_.data();
  const size_t n = sum_.size();
  for (int r : ranks) {
    if (!has_gradient[size_t(r)]) continue;
    const float* g = plane.slot(r);
    for (size_t i = 0; i < n; ++i) acc[i] += g[i];
  }
  return sum_;
}

void GradientReducer::begin(const std::vector<int>& ranks, int world_size) {
  std::fill(sum_.begin(), sum_.end(), 0.f);
  ranks_ = ranks;
  position_.assign(size_t(world_size), -1);
  for (size_t i = 0; i < ranks_.size(); ++i) position_[size_t(ranks_[i])] = int(i);
  held_.assign(ranks_.size(), std::vector<std::string>(plan_.size()));
  got_.assign(ranks_.size(), std::vector<char>(plan_.size(), 0));
  next_.assign(plan_.size(), 0);
  count_.assign(size_t(world_size), 0);
}

std::string GradientReducer::add(int r, int b, std::string* bytes) {
  if (r < 0 || size_t(r) >= position_.size() || position_[size_t(r)] < 0)
    return "a gradient bucket from a rank that computes nothing this step";
  if (b < 0 || size_t(b) >= plan_.size())
    return "gradient bucket " + std::to_string(b) + " of a plan of " + std::to_string(plan_.size());
  const GradientBucket& g = plan_[size_t(b)];
  if (bytes->size() != g.size() * sizeof(float))
    return "gradient bucket " + std::to_string(b) + " of " + std::to_string(bytes->size()) +
           " bytes instead of " + std::to_string(g.size() * sizeof(float));
  const size_t pos = size_t(position_[size_t(r)]);
  if (got_[pos][size_t(b)]) return "a second copy of gradient bucket " + std::to_string(b);
  got_[pos][size_t(b)] = 1;
  held_[pos][size_t(b)].swap(*bytes);
  ++count_[size_t(r)];
  // Everything now next in rank order for this bucket.
  size_t& next = next_[size_t(b)];
  while (next < ranks_.size() && got_[next][size_t(b)]) {
    std::string& h = held_[next][size_t(b)];
    add_packed_floats(h, sum_.data() + g.begin, g.size());
    std::string().swap(h);  // its memory goes now, not at the end of the step
    ++next;
  }
  return "";
}

bool GradientReducer::complete() const {
  return std::all_of(next_.begin(), next_.end(), [&](size_t n) { return n == ranks_.size(); });
}

}  // namespace ts
