// The background loader: order, equality with direct assembly, wait accounting, buffer reuse
// and shutdown.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "augment.h"
#include "batch_loader.h"
#include "cifar10.h"
#include "synthetic_cifar10.h"

using ts::Augment;
using ts::BatchLoader;
using ts::LoadedBatch;
using ts::LoaderOptions;
using ts::LoadRequest;
using ts::Set;

namespace {

const ts::Cifar10& data() {
  static const ts::Cifar10 c = [] {
    const std::string dir = std::string(TEST_TMP_DIR) + "/batch_loader/synthetic";
    ts::ensure_synthetic_cifar10(dir, 4);
    return ts::Cifar10::open(dir);
  }();
  return c;
}

LoadRequest request(int first, int n, Set set, int64_t epoch, int64_t tag) {
  LoadRequest r;
  for (int i = 0; i < n; ++i) r.indices.push_back((first + 37 * i) % data().size(set));
  r.set = set;
  r.epoch = epoch;
  r.tag = tag;
  return r;
}

}  // namespace

TEST_CASE("the loader returns batches in push order, equal to direct assembly", "[data]") {
  for (int threads : {1, 3}) {
    INFO(threads << " loader threads");
    LoaderOptions opt;
    opt.augment = Augment::kFlipCrop;
    opt.seed = 21;
    opt.threads = threads;
    opt.capacity = threads + 1;
    BatchLoader loader(data(), opt);
    const int steps = 24;
    // Mixed sizes (and a test-set request) so slow and fast batches interleave.
    for (int s = 0; s < steps; ++s) {
      const Set set = s % 5 == 4 ? Set::kTest : Set::kTrain;
      loader.push(request(s * 101, 1 + (s * 53) % 96, set, s / 8, 1000 + s));
    }
    LoadedBatch b;
    for (int s = 0; s < steps; ++s) {
      REQUIRE(loader.pop(b));
      const LoadRequest want = request(s * 101, 1 + (s * 53) % 96,
                                       s % 5 == 4 ? Set::kTest : Set::kTrain, s / 8, 0);
      CHECK(b.tag == 1000 + s);
      CHECK(b.epoch == s / 8);
      CHECK(b.set == want.set);
      REQUIRE(b.n == int(want.indices.size()));
      CHECK(b.indices == want.indices);
      REQUIRE(b.images.size() == size_t(b.n) * 3072);
      std::vector<float> images(size_t(b.n) * 3072);
      std::vector<int32_t> labels(size_t(b.n));
      // Augmentation applies to training batches only.
      const Augment a = want.set == Set::kTrain ? Augment::kFlipCrop : Augment::kNone;
      ts::assemble_batch(data(), want.set, want.indices.data(), b.n, a, 21, want.epoch,
                         images.data(), labels.data());
      CHECK(b.images == images);
      CHECK(b.labels == labels);
    }
    CHECK(loader.pops() == steps);
  }
}

TEST_CASE("the loader measures the time the consumer waits in pop", "[data]") {
  BatchLoader loader(data(), LoaderOptions{});
  CHECK(loader.wait_seconds() == 0);
  // A large batch pushed and popped at once cannot be ready yet: the pop waits.
  loader.push(request(0, 4000, Set::kTrain, 0, 1));
  LoadedBatch b;
  REQUIRE(loader.pop(b));
  const double first = loader.last_wait_seconds();
  CHECK(first > 0);
  CHECK(loader.wait_seconds() == first);
  // A small batch given time to be prepared is popped with (almost) no wait.
  loader.push(request(0, 8, Set::kTrain, 0, 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(loader.pop(b));
  CHECK(loader.last_wait_seconds() < first);
  CHECK(loader.last_wait_seconds() < 0.05);
  CHECK(loader.wait_seconds() == Approx(first + loader.last_wait_seconds()));
  CHECK(loader.pops() == 2);
}

TEST_CASE("the loader reuses its buffers in steady state", "[data]") {
  LoaderOptions opt;
  opt.capacity = 3;
  BatchLoader loader(data(), opt);
  for (int s = 0; s < 40; ++s) loader.push(request(s, 64, Set::kTrain, 0, s));
  LoadedBatch b;
  std::set<const float*> buffers;
  for (int s = 0; s < 40; ++s) {
    REQUIRE(loader.pop(b));
    buffers.insert(b.images.data());
  }
  // The consumer's buffer plus one per slot circulate; nothing new is allocated.
  CHECK(buffers.size() <= size_t(opt.capacity) + 1);
}

TEST_CASE("an error building a batch surfaces in its pop, and later batches still come",
          "[data]") {
  BatchLoader loader(data(), LoaderOptions{});
  LoadRequest bad = request(0, 4, Set::kTest, 0, 1);
  bad.indices[2] = 10000;  // one past the test set
  loader.push(bad);
  loader.push(request(0, 4, Set::kTest, 0, 2));
  LoadedBatch b;
  CHECK_THROWS_AS(loader.pop(b), std::out_of_range);
  REQUIRE(loader.pop(b));
  CHECK(b.tag == 2);
}

TEST_CASE("the loader shuts down cleanly with work pending and wakes a waiting pop",
          "[data]") {
  SECTION("destroyed with requests queued and batches unpopped") {
    const auto t0 = std::chrono::steady_clock::now();
    {
      LoaderOptions opt;
      opt.threads = 2;
      opt.capacity = 2;
      BatchLoader loader(data(), opt);
      for (int s = 0; s < 200; ++s) loader.push(request(s, 128, Set::kTrain, 0, s));
      LoadedBatch b;
      REQUIRE(loader.pop(b));
    }
    // Only the batches in hand are finished, not the 199 queued ones.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  }
  SECTION("a pop waiting for a request that never comes returns false on close") {
    BatchLoader loader(data(), LoaderOptions{});
    std::atomic<int> result{-1};
    std::thread consumer([&] {
      LoadedBatch b;
      result = loader.pop(b) ? 1 : 0;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(result == -1);  // still waiting
    loader.close();
    consumer.join();
    CHECK(result == 0);
    LoadedBatch b;
    CHECK_FALSE(loader.pop(b));
    CHECK_THROWS_AS(loader.push(request(0, 1, Set::kTrain, 0, 0)), std::logic_error);
  }
  SECTION("a request pushed from another thread wakes a waiting pop") {
    BatchLoader loader(data(), LoaderOptions{});
    std::thread producer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      loader.push(request(0, 16, Set::kTrain, 0, 77));
    });
    LoadedBatch b;
    REQUIRE(loader.pop(b));
    CHECK(b.tag == 77);
    CHECK(loader.last_wait_seconds() > 0.02);
    producer.join();
  }
}

TEST_CASE("the loader rejects threads < 1 and capacity < threads", "[data]") {
  LoaderOptions opt;
  opt.threads = 0;
  CHECK_THROWS_AS(BatchLoader(data(), opt), std::invalid_argument);
  opt.threads = 3;
  opt.capacity = 2;
  CHECK_THROWS_AS(BatchLoader(data(), opt), std::invalid_argument);
}
