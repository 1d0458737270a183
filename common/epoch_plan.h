// Epoch plans: which training records each step of an epoch uses, and which worker computes
// which of them. Everything here is a pure function of (seed, epoch, range, sizes), so the
// coordinator can re-deal any part of an epoch and get the same plan again.
#pragma once
#include <cstdint>
#include <vector>

namespace ts {

// The records [begin, end) in the order epoch `epoch` visits them: a Fisher-Yates shuffle
// drawn from Rng(mix_seed(seed, epoch, salt)) when `shuffle`, file order otherwise.
// Throws std::invalid_argument if end < begin.
std::vector<int32_t> epoch_order(uint64_t seed, int64_t epoch, int begin, int end,
                                 bool shuffle);

// Cuts `order` into consecutive global batches of `batch` records; the last one holds the
// remainder and is kept (Keras' behaviour), so every record is visited once per epoch, or
// dropped when `drop_last` (PyTorch's DataLoader(drop_last=True), airbench's loader): every
// step then has the same global batch. Throws std::invalid_argument if batch < 1.
std::vector<std::vector<int32_t>> global_batches(const std::vector<int32_t>& order, int batch,
                                                 bool drop_last = false);

// Worker `rank`'s contiguous share of a global batch of n records split among `workers`, in
// whole granules of `granule` consecutive records (a batch-norm group: network.h): of the
// n / granule granules, each rank gets granules / workers and the first granules % workers
// ranks one more (granule 1: n / workers records each, the first n % workers one more).
// Shares are in rank order, so concatenating them gives the batch back, and a granule never
// straddles two workers, so a sample meets the same group mates whatever the split.
// Throws std::invalid_argument when n is not a multiple of granule.
struct WorkerShare {
  int begin = 0;  // offset into the global batch
  int count = 0;
};
WorkerShare worker_share(int n, int workers, int rank, int granule = 1);

// The same split applied to an index list: result[rank] is worker rank's records.
// Throws std::invalid_argument if workers < 1.
std::vector<std::vector<int32_t>> split_among_workers(const std::vector<int32_t>& batch,
                                                      int workers, int granule = 1);

// One epoch, planned: the global batches in step order.
struct EpochPlan {
  int64_t epoch = 0;
  int granule = 1;  // shares are dealt in whole granules (worker_share)
  std::vector<std::vector<int32_t>> batches;

  int steps() const { return static_cast<int>(batches.size()); }
  // Worker `rank`'s records at step `step`.
  std::vector<int32_t> share(int step, int rank, int workers) const;
};

EpochPlan plan_epoch(uint64_t seed, int64_t epoch, int begin, int end, bool shuffle,
                     int global_batch, bool drop_last = false, int granule = 1);

}  // namespace ts
