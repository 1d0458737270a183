#include "respawner.h"

#include <cstdio>
#include <memory>
#include <stdexcept>

#include "stop_signals.h"
#include "trainer_service.h"

namespace ts {

Respawner::Respawner(int budget, Membership& members, EventQueue& events, Hooks hooks)
    : budget_(budget), members_(members), events_(events), hooks_(std::move(hooks)) {
  members_.on_lost([this](int rank, const std::string& why) { lost(rank, why); });
}

Respawner::~Respawner() { members_.on_lost(nullptr); }

void Respawner::lost(int rank, const std::string& why) {
  const WorkerRecord& w = members_.workers()[size_t(rank)];
  if (used_ + int(pending_.size()) >= budget_) {
    std::fprintf(stderr, "threadsplit: worker %d is not replaced: --respawn %d is spent (%d "
                 "replacement%s so far)\n", rank, budget_, used_, used_ == 1 ? "" : "s");
    return;
  }
  pending_.push_back(Pending{rank, int64_t(w.pid), w.exit, why});
}

std::vector<int> Respawner::bring_back(int64_t step) {
  std::vector<int> back;
  std::vector<Pending> todo;
  todo.swap(pending_);
  for (const Pending& p : todo)
    if (replace(p, step)) back.push_back(p.rank);
  return back;
}

bool Respawner::replace(const Pending& p, int64_t step) {
  ++used_;
  RespawnRecord rec;
  rec.rank = p.rank;
  rec.old_pid = p.old_pid;
  rec.step = step;
  rec.old_exit = p.old_exit;
  rec.why = p.why;
  std::string failed;
  Started started;
  std::optional<threadsplit::Hello> hello;
  try {
    started = hooks_.start(p.rank);
    hello = hooks_.join(p.rank, started, &failed);
  } catch (const std::exception& e) {  // whatever it is, the run goes on without it
    failed = std::string("could not be started: ") + e.what();
  }
  if (!hello) {
    rec.outcome = "not replaced: the replacement " + failed;
    respawns_.push_back(rec);
    std::fprintf(stderr, "threadsplit: RESPAWN FAILED: worker %d (pid %lld) %s, at step %lld; "
                 "continuing with %d of %d workers\n", p.rank, (long long)p.old_pid,
                 rec.outcome.c_str(), (long long)step, members_.live_count(), members_.world_size());
    return false;
  }
  // Whatever the old process left queued is not the new one's.
  events_.drop_rank(p.rank);
  members_.readmit(p.rank, started.pid, started.cores, *hello);
  rec.new_pid = started.pid;
  rec.outcome = "rejoined";
  respawns_.push_back(rec);
  std::string who = "worker " + std::to_string(p.rank) + " (pid " + std::to_string(started.pid);
  if (!started.cores.empty()) who += ", cores " + started.cores;
  who += ")";
  std::fprintf(stderr, "threadsplit: WORKER RESPAWNED: %s replaces pid %lld, which %s, at step %lld "
               "(%d of --respawn %d used); %d of %d workers\n", who.c_str(), (long long)p.old_pid,
               p.old_exit.c_str(), (long long)step, used_, budget_, members_.live_count(),
               members_.world_size());
  return true;
}

Respawner::Hooks local_worker_hooks(TrainerService& service, std::vector<WorkerLaunch> launches,
                                    std::function<threadsplit::Welcome(int rank)> welcome,
                                    double connect_timeout_s) {
  auto recipes = std::make_shared<std::vector<WorkerLaunch>>(std::move(launches));
  Respawner::Hooks h;
  h.start = [recipes](int rank) {
    const WorkerLaunch& l = (*recipes)[size_t(rank)];
    Respawner::Started s;
    s.pid = launch_worker(l);
    s.cores = l.cores.to_string();
    return s;
  };
  h.join = [&service, welcome, connect_timeout_s](int rank, const Respawner::Started& s,
                                                  std::string* why) -> std::optional<threadsplit::Hello> {
    service.expect_rejoin(rank, s.pid, welcome(rank));
    std::string exited;
    int stopped_by = 0;
    auto link = service.wait_for_rejoin(rank, connect_timeout_s, [&] {
      // A stop signal ends the wait: the run stops after this step boundary, and a hung
      // replacement must not hold the final checkpoint back by --connect-timeout.
      if ((stopped_by = stop_signal()) != 0) return true;
      int status = 0;
      if (!worker_exited(s.pid, &status)) return false;
      exited = describe_wait_status(status);
      return true;
    });
    if (link) return link->hello();
    if (stopped_by != 0) {
      stop_worker(s.pid, 0);
      *why = "(pid " + std::to_string(s.pid) + ") was not waited for: the run was stopped by " +
             signal_name(stopped_by);
    } else if (exited.empty()) {
      stop_worker(s.pid, 0);
      *why = "(pid " + std::to_string(s.pid) + ") did not join within " +
             std::to_string(int(connect_timeout_s)) + " s (--connect-timeout)";
    } else {
      *why = "(pid " + std::to_string(s.pid) + ") " + exited + " before joining (its own message is above)";
    }
    return std::nullopt;
  };
  return h;
}

}  // namespace ts
