// How the coordinator's training thread is scheduled (--coordinator-priority).
//
// The coordinator sits on the critical path of every step: each worker waits for it to
// average, update and send. When P x T = cores, every core runs a worker, and on a 2-core box
// the training thread, woken once every gradient is in, often waited behind a worker that had
// just received its parameters before it could send the next worker's: the second worker then
// waited 1-4 ms with its own core idle, in about one step in ten (docs/results.md, "Where the
// exchange time went"). Under SCHED_FIFO the training thread runs as soon as it is runnable and
// no worker preempts it; it blocks between steps (and wakes only when a step's last gradient is
// in: trainer_service.h, EventQueue), so the workers lose nothing else.
//
// Only that thread: SCHED_RESET_ON_FORK makes every thread it creates (gRPC's) and every
// process it forks (the workers) start at normal priority. gRPC's pollers are better off
// normal: a normal thread woken by a socket is placed on the sender's core, which has just gone
// idle, whereas a real-time one would preempt whatever runs on the core it last used.
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
