#include "inter_op_teams.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace ts {

std::vector<int> micro_batch_sizes(int n, int granule, int lanes) {
  if (n < 0 || granule < 1 || lanes < 1) throw std::invalid_argument("micro_batch_sizes: n >= 0, granule >= 1, lanes >= 1");
  std::vector<int> counts(static_cast<size_t>(lanes), 0);
  const int groups = n / granule, rem = n % granule;
  for (int i = 0; i < lanes; ++i)
    counts[size_t(i)] = (groups / lanes + (i < groups % lanes ? 1 : 0)) * granule;
  int last = 0;
  for (int i = 0; i < lanes; ++i)
    if (counts[size_t(i)] > 0) last = i;
  counts[size_t(last)] += rem;
  return counts;
}

void set_calling_thread_cores(const CoreSet& cores) {
  if (cores.empty()) return;
  int max_core = 0;
  for (int c : cores.cores()) max_core = std::max(max_core, c);
  const size_t n = size_t(max_core) + 1;
  cpu_set_t* set = CPU_ALLOC(n);
  const size_t bytes = CPU_ALLOC_SIZE(n);
  CPU_ZERO_S(bytes, set);
  for (int c : cores.cores()) CPU_SET_S(size_t(c), bytes, set);
  sched_setaffinity(0, bytes, set);  // best effort: a refusal leaves the mask as it was
  CPU_FREE(set);
}

void pin_team(const CoreSet& cores) {
  set_calling_thread_cores(cores);
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
    set_calling_thread_cores(CoreSet({cores[t % cores.size()]}));
  }
}

InterOpTeams::InterOpTeams(int lanes, int threads, CoreSet cores) : threads_(threads) {
  if (lanes < 1 || threads < 1) throw std::invalid_argument("inter-op teams need lanes >= 1 and threads >= 1");
  if (cores.empty()) throw std::invalid_argument("inter-op teams need at least one core");
  for (int i = 0; i < lanes; ++i) lane_cores_.push_back(cores.slice(i, threads));
  errors_.resize(size_t(lanes));
  if (lanes == 1) return;
  // Lane threads inherit the caller's mask until they pin themselves.
  for (int i = 1; i < lanes; ++i) threads_of_lanes_.emplace_back([this, i] { serve(i); });
  pin_team(lane_cores_[0]);
  // Every lane pins its team before the first job.
  run([this](int lane) {
    if (lane > 0) pin_team(lane_cores_[size_t(lane)]);
  });
}

InterOpTeams::~InterOpTeams() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_of_lanes_) t.join();
}

void InterOpTeams::serve(int lane) {
  unsigned seen = 0;
  while (true) {
    const std::function<void(int)>* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return quit_ || generation_ != seen; });
      if (quit_) return;
      seen = generation_;
      job = job_;
    }
    std::exception_ptr error;
    try {
      (*job)(lane);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      errors_[size_t(lane)] = error;
      if (--busy_ == 0) done_.notify_all();
    }
  }
}

void InterOpTeams::run(const std::function<void(int lane)>& job) {
  if (lanes() == 1) {
    job(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    busy_ = lanes() - 1;
    ++generation_;
    std::fill(errors_.begin(), errors_.end(), nullptr);
  }
  wake_.notify_all();
  std::exception_ptr first;
  try {
    job(0);
  } catch (...) {
    first = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return busy_ == 0; });
  job_ = nullptr;
  if (!first)
    for (const std::exception_ptr& e : errors_)
      if (e) {
        first = e;
        break;
      }
  lock.unlock();
  if (first) std::rethrow_exception(first);
}

std::vector<std::vector<CoreSet>> InterOpTeams::thread_cores() {
  std::vector<std::vector<CoreSet>> out(static_cast<size_t>(lanes()));
  run([&](int lane) {
    std::vector<CoreSet> masks(static_cast<size_t>(omp_get_max_threads()));
    int team = 1;
#pragma omp parallel
    {
      const int t = omp_get_thread_num();
      CoreSet mine = CoreSet::of_this_process();
#pragma omp critical
      {
        if (size_t(t) < masks.size()) masks[size_t(t)] = std::move(mine);
        team = omp_get_num_threads();
      }
    }
    masks.resize(size_t(team));
    out[size_t(lane)] = std::move(masks);
  });
  return out;
}

}  // namespace ts
