// The loader: background thread(s) that assemble the next batches while the consumer computes.
//
// Requests are pushed in order and their batches pop in the same order. At most `capacity`
// batches are prepared ahead of the consumer (in progress or ready), and their buffers are
// reused: pop() swaps the ready batch with the caller's, so the caller's old buffers become
// the next ones filled and a steady state of same-size batches allocates nothing.
//
// The time pop() spends waiting is the "loader starved the step" number the run report shows.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "augment.h"
#include "cifar10.h"

namespace ts {

struct LoadRequest {
  std::vector<int32_t> indices;  // records of `set`, in batch order
  Set set = Set::kTrain;
  int64_t epoch = 0;             // keys the augmentation draws
  int64_t tag = 0;               // opaque to the loader, handed back with the batch
};

struct LoadedBatch {
  int n = 0;                     // samples in this batch
  Set set = Set::kTrain;
  int64_t epoch = 0;
  int64_t tag = 0;
  std::vector<int32_t> indices;  // n records
  std::vector<float> images;     // [n, 3, 32, 32] in [0, 1], or normalized
  std::vector<int32_t> labels;   // [n]
};

struct LoaderOptions {
  Augment augment = Augment::kNone;  // applied to Set::kTrain requests only
  uint64_t seed = 0;                 // the run seed: augmentation is keyed by it
  bool normalize = false;            // images normalized per channel (augment.h)
  int capacity = 2;                  // batches prepared ahead; at least `threads`
  int threads = 1;                   // loader threads; order is kept whatever the count
};

class BatchLoader {
 public:
  // `data` must outlive the loader. Throws std::invalid_argument on threads < 1 or
  // capacity < threads.
  BatchLoader(const Cifar10& data, LoaderOptions options);
  ~BatchLoader();  // close()
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Queues a request (the request queue itself is unbounded; index lists are small).
  // Throws std::logic_error after close().
  void push(LoadRequest request);

  // Waits for the batch of the oldest request not yet popped (pushed already, or to be
  // pushed by another thread) and swaps it into `batch`. Returns false once the loader is
  // closed, which also wakes a waiting pop. Rethrows an error the loader met building this
  // batch (e.g. std::out_of_range for a bad index); later batches are unaffected.
  // One consumer thread.
  bool pop(LoadedBatch& batch);

  // Stops the threads (each finishes the batch in its hands) and wakes pending pops;
  // unpopped batches are dropped. Idempotent.
  void close();

  // Consumer-side waiting in pop(), seconds.
  double wait_seconds() const;       // total over all pops
  double last_wait_seconds() const;  // the latest pop
  int64_t pops() const;

 private:
  struct Slot {
    LoadedBatch batch;
    std::exception_ptr error;
    bool ready = false;
  };
  struct Pending {
    LoadRequest request;
    int64_t seq = 0;
  };

  void run();
  void fill(const LoadRequest& request, LoadedBatch& batch) const;

  const Cifar10& data_;
  const LoaderOptions options_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // loader threads: a request may be taken, or close
  std::condition_variable ready_cv_;  // consumer: a slot became ready, or close
  std::deque<Pending> requests_;      // pushed, not yet taken by a loader thread
  std::vector<Slot> slots_;           // batch seq lives in slots_[seq % capacity]
  int64_t next_push_ = 0;             // seq of the next push
  int64_t next_pop_ = 0;              // seq of the next pop
  bool closed_ = false;
  double wait_total_ = 0, wait_last_ = 0;
  int64_t pops_ = 0;

  std::vector<std::thread> threads_;
};

}  // namespace ts
