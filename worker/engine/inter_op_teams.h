// Inter-op parallelism inside one worker (--inter-op I): I lanes, each the master of its own
// OpenMP team of T threads pinned to its own T cores, running a job at the same time. The
// worker uses them to split its share of a step into I micro-batches that run forward and
// backward concurrently through the same parameters, their gradients summed in lane order.
//
// What libgomp does with several teams (GCC 12, measured on this project's machines, see
// docs/inter-op.md): with OMP_PROC_BIND set, a team started by a thread that is not an
// OpenMP thread is bound from place 0 of OMP_PLACES whatever that thread's own affinity
// mask is, so two lanes' teams land on the same cores; and there is no per-thread
// OMP_PLACES. So a worker with I > 1 runs with OMP_PROC_BIND=false (libgomp then leaves
// every mask alone) and pins itself: each lane thread to its cores, and in the first parallel
// region each thread of its team to one core. libgomp keeps one thread pool per master
// thread and reuses its threads for every later region of that master, so the pins hold.
// oneDNN (OpenMP runtime) executes each primitive in the calling thread's team, and its
// library-managed scratchpad is per creating thread: each lane therefore creates and runs
// its own primitives (a Model per lane, built inside the lane).
#pragma once
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core_set.h"

namespace ts {

class InterOpTeams {
 public:
  // `lanes` teams of `threads` threads over `cores` (the worker's own, in order): lane i gets
  // cores.slice(i, threads). Lane 0 is the calling thread, which is pinned here; lanes
  // 1..I-1 are threads started here. With lanes == 1 nothing is started or pinned (the
  // launcher's OMP_PROC_BIND binding stands).
  InterOpTeams(int lanes, int threads, CoreSet cores);
  ~InterOpTeams();
  InterOpTeams(const InterOpTeams&) = delete;
  InterOpTeams& operator=(const InterOpTeams&) = delete;

  int lanes() const { return int(lane_cores_.size()); }
  // The cores lane i was given.
  const CoreSet& lane_cores(int i) const { return lane_cores_[size_t(i)]; }

  // Runs job(i) in lane i for every lane at once and returns when all are done. The first
  // exception any lane threw (by lane order) is rethrown here after all have finished.
  void run(const std::function<void(int lane)>& job);

  // Each lane's OpenMP threads' affinity masks, thread 0 first, read back inside the lanes.
  std::vector<std::vector<CoreSet>> thread_cores();

 private:
  void serve(int lane);

  std::vector<CoreSet> lane_cores_;
  int threads_;
  std::vector<std::thread> threads_of_lanes_;  // lanes 1..I-1
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  unsigned generation_ = 0;
  int busy_ = 0;
  bool quit_ = false;
  std::vector<std::exception_ptr> errors_;
};

// How a share of n samples splits into `lanes` micro-batches: whole groups of `granule`
// samples (the batch-norm groups, NetworkSpec::sample_granule), the first lanes taking one
// more group where they do not divide evenly, and a partial last group staying last (with
// the last lane that has samples). Lane 0 has samples whenever n > 0.
std::vector<int> micro_batch_sizes(int n, int granule, int lanes);

// Sets the calling thread's affinity mask (best effort: a refusal leaves it as it was).
void set_calling_thread_cores(const CoreSet& cores);

// Pins the calling thread to `cores`, then each thread of its OpenMP team (the next parallel
// region's) to one of them: thread t to cores[t % size].
void pin_team(const CoreSet& cores);

}  // namespace ts
