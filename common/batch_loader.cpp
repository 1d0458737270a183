#include "batch_loader.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "timing.h"

namespace ts {

BatchLoader::BatchLoader(const Cifar10& data, LoaderOptions options)
    : data_(data), options_(options) {
  if (options_.threads < 1 || options_.capacity < options_.threads) {
    throw std::invalid_argument("loader: need threads >= 1 and capacity >= threads, got " +
                                std::to_string(options_.threads) + " threads, capacity " +
                                std::to_string(options_.capacity));
  }
  slots_.resize(size_t(options_.capacity));
  threads_.reserve(size_t(options_.threads));
  for (int t = 0; t < options_.threads; ++t) threads_.emplace_back([this] { run(); });
}

BatchLoader::~BatchLoader() { close(); }

void BatchLoader::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void BatchLoader::push(LoadRequest request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) throw std::logic_error("BatchLoader::push after close");
    requests_.push_back(Pending{std::move(request), next_push_++});
  }
  work_cv_.notify_one();
}

bool BatchLoader::pop(LoadedBatch& batch) {
  const Stopwatch watch;
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Before its request is pushed the slot is not ready either, so this also waits for a
    // push from another thread.
    Slot& slot = slots_[size_t(next_pop_ % options_.capacity)];
    ready_cv_.wait(lock, [&] { return slot.ready || closed_; });
    if (closed_) return false;
    wait_last_ = watch.elapsed();
    wait_total_ += wait_last_;
    ++pops_;
    std::swap(batch, slot.batch);  // the caller's old buffers are refilled next
    error = std::exchange(slot.error, nullptr);
    slot.ready = false;
    ++next_pop_;
  }
  // A slot freed: the request `capacity` ahead may start now.
  work_cv_.notify_all();
  if (error) std::rethrow_exception(error);
  return true;
}

void BatchLoader::run() {
  for (;;) {
    Pending job;
    Slot* slot = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] {
        return closed_ ||
               (!requests_.empty() && requests_.front().seq < next_pop_ + options_.capacity);
      });
      if (closed_) return;
      job = std::move(requests_.front());
      requests_.pop_front();
      slot = &slots_[size_t(job.seq % options_.capacity)];
    }
    // The slot is ours until it is marked ready: the consumer touches only ready slots.
    std::exception_ptr error;
    try {
      fill(job.request, slot->batch);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      slot->error = error;
      slot->ready = true;
    }
    ready_cv_.notify_all();
  }
}

void BatchLoader::fill(const LoadRequest& request, LoadedBatch& batch) const {
  const int n = static_cast<int>(request.indices.size());
  batch.n = n;
  batch.set = request.set;
  batch.epoch = request.epoch;
  batch.tag = request.tag;
  batch.indices.assign(request.indices.begin(), request.indices.end());
  // Shrinking keeps capacity, so a short last batch costs no allocation next epoch.
  batch.images.resize(size_t(n) * kCifarImageBytes);
  batch.labels.resize(size_t(n));
  const Augment augment = request.set == Set::kTrain ? options_.augment : Augment::kNone;
  assemble_batch(data_, request.set, request.indices.data(), n, augment, options_.seed,
                 request.epoch, batch.images.data(), batch.labels.data(), options_.normalize);
}

double BatchLoader::wait_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wait_total_;
}

double BatchLoader::last_wait_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wait_last_;
}

int64_t BatchLoader::pops() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pops_;
}

}  // namespace ts
