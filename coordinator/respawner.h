// --respawn N: a spawned worker lost under --on-worker-failure continue is replaced by a new
// process for the same rank, on the same (freed) cores, with the same environment (token,
// rank, run id, TLS), at most N times in the run.
//
// Membership::lose() applies the continue policy as ever (the rank is stopped, dropped, and
// the survivors carry the step) and tells the Respawner, which queues the rank. At the next
// step boundary (TrainingRun::run_step, before the gather) bring_back() starts the
// replacement, waits for its Hello (bounded by --connect-timeout; one that does not join is
// stopped and the run goes on without it, as under continue), hands it a Welcome with the
// current parameters and step, drops whatever the old process left queued, and readmits the
// rank; the collective then re-deals the rest of the epoch among the live ranks including it.
// Each step keeps its global batch, so the math is unchanged (up to float summation order).
// The old process cannot pass for the new one: its session's later messages are dropped by
// TrainerService (a superseded session), its queued ones here, and its results carry an older
// deal id.
#pragma once
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "membership.h"
#include "trainer.pb.h"
#include "worker_events.h"
#include "worker_launcher.h"

namespace ts {

class TrainerService;

// One replacement, for the report.
struct RespawnRecord {
  int rank = 0;
  int64_t old_pid = 0, new_pid = 0;  // new_pid 0: none joined
  int64_t step = 0;                  // the step it joined at (or was tried at)
  std::string old_exit;              // how the old process ended ("was killed by signal 9 ...")
  std::string why;                   // why it was lost
  std::string outcome;               // "rejoined", or why the replacement did not
};

class Respawner {
 public:
  struct Started {
    pid_t pid = -1;
    std::string cores;
  };
  // How a replacement is started and admitted; local_worker_hooks() has the real ones, the
  // unit tests script them.
  struct Hooks {
    // Starts a replacement for `rank`; throws std::runtime_error when it cannot.
    std::function<Started(int rank)> start;
    // Its Hello once it joined (it was sent the Welcome of the current step); nullopt with
    // *why when it did not (the process is stopped by then).
    std::function<std::optional<threadsplit::Hello>(int rank, const Started& started, std::string* why)> join;
  };

  // budget: --respawn N. Registers with `members` to hear of losses.
  Respawner(int budget, Membership& members, EventQueue& events, Hooks hooks);
  ~Respawner();
  Respawner(const Respawner&) = delete;
  Respawner& operator=(const Respawner&) = delete;

  // A lost rank waits to be replaced.
  bool due() const { return !pending_.empty(); }
  // Replaces every waiting rank before global step `step`; the ranks that rejoined (the
  // caller re-deals the rest of the epoch).
  std::vector<int> bring_back(int64_t step);

  int budget() const { return budget_; }
  int used() const { return used_; }
  const std::vector<RespawnRecord>& respawns() const { return respawns_; }

 private:
  struct Pending {
    int rank;
    int64_t old_pid;
    std::string old_exit, why;
  };
  void lost(int rank, const std::string& why);
  bool replace(const Pending& p, int64_t step);

  const int budget_;
  Membership& members_;
  EventQueue& events_;
  Hooks hooks_;
  int used_ = 0;  // replacements started or tried
  std::vector<Pending> pending_;
  std::vector<RespawnRecord> respawns_;
};

// The real hooks: `launches[r]` starts rank r as spawn_and_join did; `welcome(r)` is the
// Welcome for a rank joining now (current parameters and step); a replacement must join
// within connect_timeout_s.
Respawner::Hooks local_worker_hooks(TrainerService& service, std::vector<WorkerLaunch> launches,
                                    std::function<threadsplit::Welcome(int rank)> welcome,
                                    double connect_timeout_s);

}  // namespace ts
