// Epoch plans: shuffles, global batches and the split of a batch among workers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <vector>

#include "cifar10.h"
#include "epoch_plan.h"

using ts::epoch_order;

namespace {
std::vector<int32_t> range(int begin, int end) {
  std::vector<int32_t> v(size_t(end - begin));
  std::iota(v.begin(), v.end(), begin);
  return v;
}
}  // namespace

TEST_CASE("epoch_order is a seeded permutation of its range", "[data]") {
  const auto a = epoch_order(42, 3, 0, 45000, true);
  CHECK(a == epoch_order(42, 3, 0, 45000, true));  // deterministic
  CHECK(a != epoch_order(42, 4, 0, 45000, true));  // another epoch
  CHECK(a != epoch_order(43, 3, 0, 45000, true));  // another seed
  CHECK(a != range(0, 45000));                     // really shuffled
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == range(0, 45000));                // every record exactly once
  // Not just a rotation or reversal: few records stay in place (about 1 expected).
  int fixed = 0;
  for (int i = 0; i < 45000; ++i) fixed += a[i] == i;
  CHECK(fixed < 10);
}

TEST_CASE("epoch_order without shuffle keeps file order", "[data]") {
  CHECK(epoch_order(42, 7, 45000, 50000, false) == range(45000, 50000));
  CHECK(epoch_order(1, 0, 0, 0, true).empty());
  CHECK_THROWS_AS(epoch_order(1, 0, 10, 5, true), std::invalid_argument);
}

TEST_CASE("epoch_order shuffles every position uniformly", "[data]") {
  // Over many epochs of a 4-record range each of the 24 orders appears about equally often:
  // a biased Fisher-Yates (e.g. j drawn from [0, n) instead of [0, i]) fails this.
  std::vector<int> count(256);
  const int epochs = 24000;
  for (int e = 0; e < epochs; ++e) {
    const auto o = epoch_order(5, e, 0, 4, true);
    ++count[o[0] * 64 + o[1] * 16 + o[2] * 4 + o[3]];
  }
  int orders = 0;
  for (int c : count) {
    if (c == 0) continue;
    ++orders;
    CHECK(c > 850);   // expected 1000, sd about 31
    CHECK(c < 1150);
  }
  CHECK(orders == 24);
}

TEST_CASE("validation records never enter a training epoch", "[data]") {
  const ts::DataSplit s = ts::keras_validation_split();
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (int32_t i : epoch_order(9, epoch, s.train_begin, s.train_end, true)) {
      REQUIRE(i >= s.train_begin);
      REQUIRE(i < s.val_begin);
    }
  }
}

TEST_CASE("global_batches cuts an epoch in order and keeps the short last batch", "[data]") {
  const auto order = epoch_order(3, 0, 0, 45000, true);
  const auto batches = ts::global_batches(order, 128);
  REQUIRE(batches.size() == 352);  // ceil(45000 / 128)
  for (size_t b = 0; b + 1 < batches.size(); ++b) CHECK(batches[b].size() == 128);
  CHECK(batches.back().size() == 45000 - 351 * 128);
  std::vector<int32_t> joined;
  for (const auto& b : batches) joined.insert(joined.end(), b.begin(), b.end());
  CHECK(joined == order);
  CHECK(ts::global_batches(range(0, 256), 128).size() == 2);  // no empty batch at the end
  CHECK_THROWS_AS(ts::global_batches(order, 0), std::invalid_argument);
}

TEST_CASE("a global batch splits among workers evenly, in rank order", "[data]") {
  for (int n : {0, 1, 7, 127, 128, 129, 1000}) {
    for (int workers : {1, 2, 3, 4, 7, 16}) {
      INFO("n = " << n << ", workers = " << workers);
      const auto batch = range(1000, 1000 + n);
      const auto shares = ts::split_among_workers(batch, workers);
      REQUIRE(shares.size() == size_t(workers));
      std::vector<int32_t> joined;
      size_t lo = shares[0].size(), hi = shares[0].size();
      for (int r = 0; r < workers; ++r) {
        joined.insert(joined.end(), shares[r].begin(), shares[r].end());
        lo = std::min(lo, shares[r].size());
        hi = std::max(hi, shares[r].size());
        if (r > 0) CHECK(shares[r].size() <= shares[r - 1].size());  // larger ones first
        const ts::WorkerShare w = ts::worker_share(n, workers, r);
        CHECK(size_t(w.count) == shares[r].size());
      }
      CHECK(joined == batch);  // every index once, contiguous slices in rank order
      CHECK(hi - lo <= 1);
    }
  }
  const ts::WorkerShare w = ts::worker_share(10, 4, 1);  // 3, 3, 2, 2
  CHECK(w.begin == 3);
  CHECK(w.count == 3);
  CHECK(ts::worker_share(10, 4, 3).begin == 8);
  CHECK_THROWS_AS(ts::split_among_workers(range(0, 4), 0), std::invalid_argument);
}

TEST_CASE("plan_epoch gives each worker its share of each step", "[data]") {
  const ts::EpochPlan p = ts::plan_epoch(11, 2, 0, 1000, true, 100);
  CHECK(p.epoch == 2);
  REQUIRE(p.steps() == 10);
  CHECK(p.batches == ts::global_batches(epoch_order(11, 2, 0, 1000, true), 100));
  std::vector<int32_t> all;
  for (int s = 0; s < p.steps(); ++s)
    for (int r = 0; r < 3; ++r) {
      const auto share = p.share(s, r, 3);
      all.insert(all.end(), share.begin(), share.end());
    }
  std::sort(all.begin(), all.end());
  CHECK(all == range(0, 1000));
}

TEST_CASE("drop_last drops only the partial last batch", "[data]") {
  const auto order = range(0, 10);
  const auto kept = ts::global_batches(order, 4);
  REQUIRE(kept.size() == 3);
  CHECK(kept.back() == std::vector<int32_t>{8, 9});
  const auto dropped = ts::global_batches(order, 4, true);
  REQUIRE(dropped.size() == 2);
  CHECK(dropped[0] == kept[0]);
  CHECK(dropped[1] == kept[1]);
  CHECK(ts::global_batches(range(0, 8), 4, true).size() == 2);  // no partial batch: nothing dropped
  // airbench94: 50,000 records in batches of 1024 -> 48 full steps per epoch.
  CHECK(ts::plan_epoch(1, 0, 0, 50000, true, 1024, true).steps() == 48);
  CHECK(ts::plan_epoch(1, 0, 0, 50000, true, 1024, false).steps() == 49);
}

TEST_CASE("shares in whole granules keep every group on one worker", "[data]") {
  // 8 groups of 4 among 3 workers: 3, 3, 2 groups.
  CHECK(ts::worker_share(32, 3, 0, 4).begin == 0);
  CHECK(ts::worker_share(32, 3, 0, 4).count == 12);
  CHECK(ts::worker_share(32, 3, 1, 4).begin == 12);
  CHECK(ts::worker_share(32, 3, 1, 4).count == 12);
  CHECK(ts::worker_share(32, 3, 2, 4).begin == 24);
  CHECK(ts::worker_share(32, 3, 2, 4).count == 8);
  // More workers than groups: the last ones get nothing, nobody gets a part of a group.
  CHECK(ts::worker_share(8, 3, 2, 4).count == 0);
  CHECK(ts::worker_share(8, 3, 1, 4).count == 4);
  // Granule 1 is today's split exactly.
  for (int n : {0, 1, 7, 128, 1000})
    for (int w = 1; w <= 5; ++w)
      for (int r = 0; r < w; ++r) {
        CHECK(ts::worker_share(n, w, r, 1).begin == ts::worker_share(n, w, r).begin);
        CHECK(ts::worker_share(n, w, r, 1).count == ts::worker_share(n, w, r).count);
      }
  CHECK_THROWS_AS(ts::worker_share(30, 2, 0, 4), std::invalid_argument);  // not whole groups
  const auto plan = ts::plan_epoch(3, 0, 0, 256, true, 128, true, 64);
  const auto cat = [&](int workers) {
    std::vector<int32_t> all;
    for (int r = 0; r < workers; ++r) {
      const auto s = plan.share(1, r, workers);
      CHECK(s.size() % 64 == 0);
      all.insert(all.end(), s.begin(), s.end());
    }
    return all;
  };
  CHECK(cat(1) == plan.batches[1]);
  CHECK(cat(2) == plan.batches[1]);
  CHECK(cat(3) == plan.batches[1]);
}
