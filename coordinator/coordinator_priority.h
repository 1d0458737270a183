// How the coordinator's training thread is scheduled (--coordinator-priority).
//
// The coordinator sits on the critical path of every step: each worker waits for it to
// average, update and send. When P x T = cores, every core runs a worker, and on a 2-core box
// the training thread, woken once every gradient is in, often waited behind a worker that had
// just received its parameters before it could send the next worker's: the second worker then
// waited 1-4 ms with its own core idle, in about one step in ten (docs/results.md, "Where the
// exchange time went"). Under SCHED_FIFO the training thread runs as soon as it is runnable and
// no worker preempts it; it blocks between messages, so the workers lose nothing else.
//
// Only that thread: SCHED_RESET_ON_FORK makes every thread it creates (gRPC's timers and
// executors) and every process it forks (the workers) start at normal priority. The training
// thread also reads the workers' sockets (trainer_service.h), so it wakes for every gradient;
// as a real-time thread it then runs on the core it last used, preempting whatever worker runs
// there even when another core is idle. Measured on the 2-core box, the net effect still
// favours SCHED_FIFO (docs/results.md), so auto keeps it.
#pragma once
#include <string>

namespace ts {

struct CoordinatorPriority {
  bool realtime = false;
  std::string describe;          // for the run line and the report: the policy, or why not
};

// Applies `mode` to the calling thread, which must be the one that runs the training loop.
// auto: SCHED_FIFO priority 1 where permitted (root, CAP_SYS_NICE, or an RLIMIT_RTPRIO of at
// least 1), else normal, saying why; realtime: the same, but refusal throws
// std::runtime_error; normal: leave scheduling alone.
CoordinatorPriority apply_coordinator_priority(const std::string& mode);

}  // namespace ts
