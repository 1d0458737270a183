// Core sets: which logical CPUs a process may run on, written the way Linux writes them
// ("0-3,8,10-11", as in /proc/<pid>/status Cpus_allowed_list and taskset -c).
//
// The launcher gives worker r the cores [r*T, (r+1)*T) of the run's list. When P x T is
// larger than the list (oversubscription) the slice wraps around, so workers share cores.
#pragma once
#include <string>
#include <sys/types.h>
#include <vector>

namespace ts {

class CoreSet {
 public:
  CoreSet() = default;
  // Cores in the order given; no duplicates (checked by parse()).
  explicit CoreSet(std::vector<int> cores) : cores_(std::move(cores)) {}

  // Parses "0-3,8,10-11". Throws std::invalid_argument with a one-sentence message naming
  // the offending piece (empty list, empty item, bad number, reversed range, duplicate core).
  static CoreSet parse(const std::string& text);

  // The cores the calling thread may run on now (sched_getaffinity), ascending. That is the
  // process's set until a runtime pins threads (libgomp pins the initial thread to the first
  // OpenMP place as soon as it starts when OMP_PROC_BIND is set).
  static CoreSet of_this_process();

  // The cores another process's main thread may run on, from /proc/<pid>/status
  // Cpus_allowed_list. Throws std::runtime_error when the process or the line does not exist.
  static CoreSet of_process(pid_t pid);

  // The union over all of a process's threads (/proc/<pid>/task/*/status), ascending: the
  // cores the process as a whole runs on, whatever its runtime pinned where.
  static CoreSet of_process_threads(pid_t pid);

  // The cores of `a` and then those of `b` not already in `a`.
  static CoreSet united(const CoreSet& a, const CoreSet& b);

  // Worker `rank`'s share when each of the workers gets `threads` cores: positions
  // [rank*threads, (rank+1)*threads) of this list, wrapping around past its end.
  CoreSet slice(int rank, int threads) const;

  // Back to the compact list form: ascending runs of consecutive cores become "a-b".
  std::string to_string() const;

  // OMP_PLACES value pinning one OpenMP thread per core: "{0},{1},{5}".
  std::string omp_places() const;
  // The cores of such a value, in its order (the placement's: team 0's cores, then team 1's);
  // empty for any other form of OMP_PLACES.
  static CoreSet from_omp_places(const std::string& places);

  const std::vector<int>& cores() const { return cores_; }
  int size() const { return int(cores_.size()); }
  bool empty() const { return cores_.empty(); }
  int operator[](int i) const { return cores_[size_t(i)]; }
  bool operator==(const CoreSet& o) const { return cores_ == o.cores_; }
  bool operator!=(const CoreSet& o) const { return !(*this == o); }

  // The same cores in ascending order (masks have no order; compare sorted).
  CoreSet sorted() const;

 private:
  std::vector<int> cores_;
};

}  // namespace ts
