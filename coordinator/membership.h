// Who is in the run: each rank's process (the one owner of the local workers' pids), what it
// reported when it joined, whether it is still alive, and the --on-worker-failure policy
// applied when one is lost (coordinator/step_deadline.h says how a loss is noticed).
//   abort:    the run stops (RunAborted), with a final checkpoint written by the caller;
//   continue: the rank is stopped and dropped, and the survivors carry on (the collective
//             re-deals the rest of the epoch among them).
#pragma once
#include <sys/types.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "step_timing.h"
#include "trainer.pb.h"
#include "worker_events.h"

namespace ts {

// The run cannot go on (a worker died, sent something invalid, or went silent, and the
// policy or the lack of survivors says stop).
class RunAborted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The run diverged: a non-finite loss or gradient from a worker, a non-finite gradient sum,
// or non-finite parameters or optimizer state after the update. Not a worker's fault: no
// policy applies, the run stops with the last good state checkpointed (report status
// "diverged", exit status 4). The message starts "the run diverged at step N".
class RunDiverged : public RunAborted {
 public:
  using RunAborted::RunAborted;
};

// A rank was found lost; Membership::lose() decides what that means for the run.
struct WorkerLost {
  int rank;
  std::string why;
};

struct WorkerRecord {
  int rank = 0;
  bool spawned = false;                // a local process this coordinator started and owns
  pid_t pid = -1;
  std::string assigned_cores;          // what the launcher set (spawned workers)
  threadsplit::Hello hello;            // what it read back and reported
  std::optional<threadsplit::Goodbye> goodbye;
  std::string exit;                    // how it ended, when known
};

class Membership {
 public:
  // on_failure: "abort" or "continue" (--on-worker-failure); grace_s: how long a spawned
  // worker may sit stopped (SIGSTOP) before it is lost (--failure-grace).
  Membership(int world_size, std::string on_failure, double grace_s, WorkerTransport& transport);
  // However the run ends, no spawned worker outlives it (stop_all(0) for any still running).
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  int world_size() const { return int(workers_.size()); }

  // A local worker process started for `rank`: from now on this object stops it.
  void adopt(int rank, pid_t pid, std::string assigned_cores);
  // What a rank reported when it joined (its binding; a hand-started worker's pid).
  void joined(int rank, const threadsplit::Hello& hello);
  // Before every rank joined: throws RunAborted when a spawned worker that has not joined
  // yet exited (its own message is above).
  void check_not_joined_exited(const std::vector<bool>& joined);

  bool alive(int rank) const { return alive_[size_t(rank)]; }
  // Ranks still in the run, in rank order.
  std::vector<int> live_ranks() const;
  int live_count() const { return live_count_; }
  // The rank's position among the live ranks (its share of a dealt step), or -1.
  int live_index(int rank) const { return live_index_[size_t(rank)]; }

  // "worker 1 (pid 123, cores 1)", and how it ended where that is known by now.
  std::string describe(int rank);

  // Spawned workers that exited, or sat stopped longer than the grace: the first such rank.
  std::optional<WorkerLost> poll_processes(const std::string& what);
  // True when the rank is a spawned process stopped by a signal right now.
  bool stopped_now(int rank) const;

  // Applies the policy: throws RunAborted (abort, or the last worker), else stops the rank's
  // process, releases its link and records why.
  void lose(int rank, const std::string& why);
  // Its stream ended because of what it sent (a non-finite loss or gradient): the run
  // diverged, no policy applies. Throws RunDiverged: `headline`, the worker described, `why`.
  [[noreturn]] void fail_run(int rank, const std::string& headline, const std::string& why);

  // End of the run: every local process still running gets `grace_s` to exit, then SIGKILL.
  void stop_all(double grace_s);

  // One line per worker lost and carried on without (--on-worker-failure continue).
  const std::vector<std::string>& lost_workers() const { return lost_workers_; }
  std::vector<WorkerRecord>& workers() { return workers_; }
  const std::vector<WorkerRecord>& workers() const { return workers_; }

 private:
  void reaped(int rank, int status);
  void renumber();

  const std::string on_failure_;
  const double grace_s_;
  WorkerTransport& transport_;
  std::vector<WorkerRecord> workers_;       // by rank
  std::vector<bool> alive_;                 // by rank
  std::vector<int> live_index_;             // rank -> position among the live ranks, or -1
  int live_count_ = 0;
  std::vector<double> stopped_since_;       // spawned rank seen stopped since (0: not)
  std::vector<std::string> lost_workers_;
};

}  // namespace ts
