// Spawns the local workers with fork/exec, each bound before its OpenMP runtime starts:
// between fork and exec the child sets its affinity mask to its cores, asks to be killed
// when the coordinator dies (PR_SET_PDEATHSIG), ignores SIGINT, SIGTERM and SIGHUP (the
// coordinator acts on those and stops it: coordinator/stop_signals.h), and execs with OMP_NUM_THREADS,
// OMP_PLACES and OMP_PROC_BIND set. The run token travels in the environment, never argv
// (argv is world-readable in /proc).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "core_set.h"

namespace ts {

struct WorkerLaunch {
  std::string program;                  // threadsplit_worker
  std::vector<std::string> args;        // after argv[0]
  CoreSet cores;                        // its affinity mask
  int omp_threads = 1;                  // OMP_NUM_THREADS
  int inter_op = 1;                     // > 1: OMP_PROC_BIND=false, THREADSPLIT_INTER_OP
  std::string memory;                   // THREADSPLIT_MEMBIND ("bind:N", "interleave:N,M"); "": none
  std::vector<std::string> extra_env;   // "NAME=value", e.g. THREADSPLIT_TOKEN
};

// The child's environment: ours, minus any OpenMP / threadsplit settings we replace, plus
// the binding and extra_env. Exposed for tests.
std::vector<std::string> worker_environment(const WorkerLaunch& launch);

// Starts one worker and returns its pid once exec succeeded. Throws std::runtime_error with
// the reason (affinity refused, program missing) when the child could not get that far.
// Must be called from the thread that lives as long as the workers should: Linux delivers
// PDEATHSIG when the *thread* that forked exits.
pid_t launch_worker(const WorkerLaunch& launch);

// Waits up to `grace_s` for the process to exit, then SIGKILLs and reaps it. Returns its
// wait status (or -1 if it was not our child).
int stop_worker(pid_t pid, double grace_s);

// Non-blocking: has the child exited? Sets *status when it has (and reaps it).
bool worker_exited(pid_t pid, int* status);

// "exited with status 3" / "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

}  // namespace ts
