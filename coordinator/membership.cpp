#include "membership.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "step_deadline.h"
#include "timing.h"
#include "worker_launcher.h"

namespace ts {

Membership::Membership(int world_size, std::string on_failure, double grace_s,
                       WorkerTransport& transport)
    : on_failure_(std::move(on_failure)),
      grace_s_(grace_s),
      transport_(transport),
      workers_(size_t(world_size)),
      alive_(size_t(world_size), true),
      live_index_(size_t(world_size)),
      live_count_(world_size),
      stopped_since_(size_t(world_size), 0.0) {
  for (int r = 0; r < world_size; ++r) {
    workers_[size_t(r)].rank = r;
    live_index_[size_t(r)] = r;
  }
}

Membership::~Membership() { stop_all(0); }

void Membership::adopt(int rank, pid_t pid, std::string assigned_cores) {
  WorkerRecord& w = workers_[size_t(rank)];
  w.spawned = pid > 0;
  w.pid = pid;
  w.assigned_cores = std::move(assigned_cores);
}

void Membership::joined(int rank, const threadsplit::Hello& hello) {
  WorkerRecord& w = workers_[size_t(rank)];
  w.hello = hello;
  if (!w.spawned) w.pid = hello.binding().pid();
}

void Membership::check_not_joined_exited(const std::vector<bool>& joined) {
  for (WorkerRecord& w : workers_) {
    int status = 0;
    if (w.spawned && !joined[size_t(w.rank)] && worker_exited(w.pid, &status)) {
      reaped(w.rank, status);
      throw RunAborted("worker " + std::to_string(w.rank) + " " + w.exit +
                       " before joining (its own message is above)");
    }
  }
}

void Membership::reaped(int rank, int status) {
  WorkerRecord& w = workers_[size_t(rank)];
  w.exit = describe_wait_status(status);
  w.spawned = false;  // nothing left to stop; the pid stays for the report
}

std::vector<int> Membership::live_ranks() const {
  std::vector<int> live;
  for (int r = 0; r < world_size(); ++r)
    if (alive_[size_t(r)]) live.push_back(r);
  return live;
}

std::string Membership::describe(int rank) {
  WorkerRecord& w = workers_[size_t(rank)];
  std::string s = "worker " + std::to_string(rank) + " (pid " + std::to_string(w.pid);
  if (!w.assigned_cores.empty()) s += ", cores " + w.assigned_cores;
  s += ")";
  if (w.spawned) {
    // Give a dying process a moment to be reaped, so the message can say how it ended.
    for (int i = 0; i < 20; ++i) {
      int status = 0;
      if (worker_exited(w.pid, &status)) {
        reaped(rank, status);
        return s + ", which " + w.exit + ",";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return s;
}

bool Membership::stopped_now(int rank) const {
  const WorkerRecord& w = workers_[size_t(rank)];
  return w.spawned && w.pid > 0 && process_stopped(w.pid);
}

std::optional<WorkerLost> Membership::poll_processes(const std::string& what) {
  const double now = now_seconds();
  // Spawned workers: an exit is seen at once, a stop after the grace period.
  for (int r : live_ranks()) {
    const WorkerRecord& w = workers_[size_t(r)];
    if (!w.spawned || w.pid <= 0) continue;
    int status = 0;
    if (worker_exited(w.pid, &status)) {
      reaped(r, status);
      return WorkerLost{r, workers_[size_t(r)].exit + " " + what};
    }
    double& since = stopped_since_[size_t(r)];
    if (!process_stopped(w.pid)) {
      since = 0;
    } else if (since == 0) {
      since = now;
    } else if (now - since > grace_s_) {
      return WorkerLost{r, "was stopped (SIGSTOP or a debugger) for " +
                               std::to_string(int(now - since)) + " s " + what};
    }
  }
  return std::nullopt;
}

void Membership::renumber() {
  int i = 0;
  for (int r = 0; r < world_size(); ++r) live_index_[size_t(r)] = alive_[size_t(r)] ? i++ : -1;
  live_count_ = i;
}

void Membership::lose(int rank, const std::string& why) {
  const std::string who = describe(rank);
  alive_[size_t(rank)] = false;
  WorkerRecord& w = workers_[size_t(rank)];
  if (w.spawned && w.pid > 0) {
    // It may be stopped or hung: it is not coming back, and must not linger on its cores.
    const int st = stop_worker(w.pid, 0);
    if (w.exit.empty()) w.exit = describe_wait_status(st);
    w.spawned = false;
  }
  if (w.exit.empty()) w.exit = "lost: " + why;
  transport_.release(rank);
  renumber();
  if (on_failure_ != "continue") throw RunAborted(who + " " + why);
  if (live_count_ == 0) throw RunAborted(who + " " + why + ", and it was the last worker");
  const std::string line = who + " " + why + "; continuing with " + std::to_string(live_count_) +
                           " of " + std::to_string(world_size()) + " workers";
  lost_workers_.push_back(line);
  std::fprintf(stderr, "threadsplit: WORKER LOST: %s\n", line.c_str());
}

void Membership::fail_run(int rank, const std::string& headline, const std::string& why) {
  // Its stream is over: no Shutdown to wait for.
  const std::string who = describe(rank);
  alive_[size_t(rank)] = false;
  renumber();
  transport_.release(rank);
  throw RunDiverged(headline + who + " " + why);
}

void Membership::stop_all(double grace_s) {
  for (WorkerRecord& w : workers_)
    if (w.spawned && w.pid > 0) {
      const int st = stop_worker(w.pid, grace_s);
      if (w.exit.empty()) w.exit = describe_wait_status(st);
      w.spawned = false;
    }
}

}  // namespace ts
