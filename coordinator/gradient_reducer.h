// The reduce of a training step: the workers' gradients summed in rank order, straight from
// their wire bytes. Rank order always, whatever order the gradients arrived in, so the sum
// (and so the run) is the same on every repetition. Workers send d(sum of their losses)/
// d(params) / global batch, so the plain sum is the batch-mean gradient whatever P is.
//
// Bucketed (--bucket-kb, common/gradient_buckets.h): the gradients come in buckets while the
// workers' backward still runs, and each bucket is summed as soon as the ranks before it
// have theirs in: bucket b of rank r is added once bucket b of every lower rank was, so
// every float is summed in the same order as reduce() sums it, and the sum is the same bits
// (0 + g0 + g1 + ..., whatever arrived first).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "gradient_buckets.h"
#include "shared_plane.h"
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

  // --data-plane shm: the same sum, in rank order, of `ranks`' slots of the plane; ranks
  // whose `has_gradient` is false (an empty share) add nothing.
  const std::vector<float>& reduce_slots(const SharedPlane& plane, const std::vector<int>& ranks,
                                         const std::vector<bool>& has_gradient);

  // The bucket plan; empty: whole gradients (reduce()).
  void set_buckets(std::vector<GradientBucket> plan) { plan_ = std::move(plan); }
  const std::vector<GradientBucket>& buckets() const { return plan_; }
  bool bucketed() const { return !plan_.empty(); }

  // Starts a step's bucketed sum over `ranks` (ascending; those dealt samples) of a world of
  // `world_size`.
  void begin(const std::vector<int>& ranks, int world_size);
  // Rank r's bucket b: "" once taken (and summed as far as rank order allows), else what is
  // wrong with it (no such bucket, the wrong size, a second copy, a rank not in the sum).
  std::string add(int r, int b, std::string* bytes);
  // Buckets of rank r taken since begin().
  int received(int r) const { return count_[size_t(r)]; }
  // Every bucket of every rank summed.
  bool complete() const;

 private:
  std::vector<float> sum_;
  std::vector<GradientBucket> plan_;
  std::vector<int> ranks_;                      // ascending
  std::vector<int> position_;                   // by rank: index in ranks_, or -1
  std::vector<std::vector<std::string>> held_;  // [position][bucket]: waiting for its turn
  std::vector<std::vector<char>> got_;          // [position][bucket]
  std::vector<size_t> next_;                    // by bucket: position of the next to add
  std::vector<int> count_;                      // by rank
};

}  // namespace ts
