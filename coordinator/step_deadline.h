// How the coordinator notices a lost worker, and what it does then.
//
// Noticed: a broken stream (the worker exited or was killed: its socket closes), a spawned
// worker that exited or sits stopped (SIGSTOP, state T in /proc), or a worker that has not
// answered within the step deadline: a few seconds (--failure-grace) beyond the slowest of
// the last steps, so a slow machine is not mistaken for a dead worker and a stopped one is
// found in seconds rather than at --step-timeout.
// Done: --on-worker-failure abort (final checkpoint, exit 1 naming the worker) or continue
// (the rest of the epoch re-dealt among the survivors; coordinator/training_run.cpp).
#pragma once
#include <sys/types.h>

#include <deque>
#include <string>

namespace ts {

// How long a worker may stay silent during a step.
class StepDeadline {
 public:
  // grace_s: slack beyond the slowest recent step; first_s: allowance before any step was
  // timed (primitive creation, loader warm-up); cap_s: never more than this (--step-timeout).
  StepDeadline(double grace_s, double first_s, double cap_s);
  void record(double step_seconds);
  // The next step gets the first step's allowance again (a worker just joined: --respawn).
  void forget() { recent_.clear(); }
  double seconds() const;
  double slowest_recent() const;

 private:
  static constexpr size_t kRecent = 20;
  double grace_s_, first_s_, cap_s_;
  std::deque<double> recent_;
};

// True while `pid` is stopped by a signal or traced (state T or t in /proc/<pid>/stat).
bool process_stopped(pid_t pid);

}  // namespace ts
