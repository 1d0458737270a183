#include "epoch_plan.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "random.h"

namespace ts {

namespace {
// Keeps shuffle streams apart from other draws keyed by (seed, epoch, ...).
constexpr uint64_t kShuffleSalt = 0x73687566666c6531ull;  // "shuffle1"
}  // namespace

std::vector<int32_t> epoch_order(uint64_t seed, int64_t epoch, int begin, int end,
                                 bool shuffle) {
  if (end < begin) {
    throw std::invalid_argument("epoch_order: empty range [" + std::to_string(begin) + ", " +
                                std::to_string(end) + ")");
  }
  std::vector<int32_t> order(size_t(end - begin));
  std::iota(order.begin(), order.end(), begin);
  if (shuffle) {
    Rng rng(mix_seed(seed, static_cast<uint64_t>(epoch), kShuffleSalt));
    for (size_t i = order.size(); i > 1; --i) {
      const size_t j = rng.below(i);  // uniform in [0, i)
      std::swap(order[i - 1], order[j]);
    }
  }
  return order;
}

std::vector<std::vector<int32_t>> global_batches(const std::vector<int32_t>& order, int batch,
                                                 bool drop_last) {
  if (batch < 1) throw std::invalid_argument("global batch size must be >= 1");
  std::vector<std::vector<int32_t>> out;
  out.reserve((order.size() + batch - 1) / batch);
  for (size_t i = 0; i < order.size(); i += size_t(batch)) {
    const size_t e = std::min(order.size(), i + size_t(batch));
    if (drop_last && e - i < size_t(batch)) break;
    out.emplace_back(order.begin() + i, order.begin() + e);
  }
  return out;
}

WorkerShare worker_share(int n, int workers, int rank, int granule) {
  if (workers < 1 || rank < 0 || rank >= workers || n < 0) {
    throw std::invalid_argument("worker_share: rank " + std::to_string(rank) + " of " +
                                std::to_string(workers) + " workers");
  }
  if (granule < 1 || n % granule != 0)
    throw std::invalid_argument("worker_share: a batch of " + std::to_string(n) +
                                " records is not a whole number of groups of " +
                                std::to_string(granule));
  const int units = n / granule;
  const int base = units / workers, rem = units % workers;
  WorkerShare s;
  s.count = (base + (rank < rem ? 1 : 0)) * granule;
  s.begin = (rank * base + std::min(rank, rem)) * granule;
  return s;
}

std::vector<std::vector<int32_t>> split_among_workers(const std::vector<int32_t>& batch,
                                                      int workers, int granule) {
  if (workers < 1) throw std::invalid_argument("split_among_workers: workers must be >= 1");
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(workers));
  for (int r = 0; r < workers; ++r) {
    const WorkerShare s = worker_share(static_cast<int>(batch.size()), workers, r, granule);
    out[r].assign(batch.begin() + s.begin, batch.begin() + s.begin + s.count);
  }
  return out;
}

std::vector<int32_t> EpochPlan::share(int step, int rank, int workers) const {
  const std::vector<int32_t>& b = batches.at(size_t(step));
  const WorkerShare s = worker_share(static_cast<int>(b.size()), workers, rank, granule);
  return std::vector<int32_t>(b.begin() + s.begin, b.begin() + s.begin + s.count);
}

EpochPlan plan_epoch(uint64_t seed, int64_t epoch, int begin, int end, bool shuffle,
                     int global_batch, bool drop_last, int granule) {
  EpochPlan p;
  p.epoch = epoch;
  p.granule = granule;
  p.batches =
      global_batches(epoch_order(seed, epoch, begin, end, shuffle), global_batch, drop_last);
  return p;
}

}  // namespace ts
