// The training loop as the coordinator runs it, once every worker has joined:
//   per epoch: plan it (common/epoch_plan.h), deal every worker its indices for every step;
//   per step:  wait for every worker's gradient, sum them in rank order, apply the optimizer
//              to the one authoritative parameter copy, send the parameters back;
//   evaluate the validation records after every --eval-every epochs, the test set at the end.
// Workers send d(sum of their losses)/d(params) / global batch, so the plain sum of their
// gradients is the batch-mean gradient whatever P is.
#pragma once
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cifar10.h"
#include "core_set.h"
#include "epoch_plan.h"
#include "step_deadline.h"
#include "network.h"
#include "optimizer.h"
#include "progress_display.h"
#include "step_timing.h"
#include "run_options.h"
#include "trainer.pb.h"

namespace ts {

class TrainerService;

// The run cannot go on (a worker died, sent something invalid, or went silent).
class RunAborted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Everything decided before the first worker starts.
struct RunSetup {
  RunOptions options;
  NetworkSpec net;
  int world_size = 1;
  int threads = 1;                    // per local worker
  CoreSet cores;                      // the run's core list (local workers)
  std::vector<CoreSet> worker_cores;  // by rank; empty for hand-started workers
  bool oversubscribed = false;
  std::string split_reason;           // how P and T were chosen
  int global_batch = 128;
  OptimizerConfig optimizer;
  DataSplit split;
  std::string data_dir;               // absolute
  bool synthetic_data = false;
  std::string run_id;
  std::string token;
  std::string config_json;            // for checkpoints and the report
};

// A worker's seconds per phase. exchange_wait is the worker's own clock: from packing its
// gradient to having the parameters. sync_wait is the coordinator's: how long that gradient
// waited at the coordinator for the other workers' (max arrival - its arrival), the part of
// exchange_wait owed to imbalance rather than to the exchange.
struct PhaseSums {
  double data_wait = 0, forward = 0, backward = 0, exchange_wait = 0, apply_params = 0,
         sync_wait = 0;
  void add(const threadsplit::PhaseTimes& t);
  void add(const PhaseSums& o);
};

struct EvalOutcome {
  std::string split;
  int64_t samples = 0;
  double loss = 0, accuracy = 0;
  double seconds = 0;
};

struct EpochRecord {
  int64_t epoch = 0;                  // 1-based for people
  int steps = 0, planned_steps = 0;
  bool aborted = false;               // the run failed during this epoch (steps: those done)
  int64_t samples = 0;
  double seconds = 0;                 // training steps only, evaluation excluded
  double images_per_s = 0;
  double train_loss = 0, train_accuracy = 0;
  std::vector<double> step_losses;    // mean training loss of each step, in order
  std::optional<EvalOutcome> validation;
  double gradient_wait_s = 0;         // coordinator waiting for the slowest gradient
  double update_s = 0;                // coordinator: sum + optimizer + packing parameters
  std::vector<PhaseSums> workers;     // by rank
  // Shares of the epoch's wall time, averaged over workers. exchange = the workers' exchange
  // wait less their sync wait: gradient up, averaging and update, parameters down. update =
  // the coordinator's part of it (sum, optimizer, packing). sync = waiting for slower workers.
  double data_share = 0, forward_share = 0, backward_share = 0, exchange_share = 0,
         update_share = 0, sync_share = 0;
};

struct WorkerRecord {
  int rank = 0;
  bool spawned = false;
  pid_t pid = -1;
  std::string assigned_cores;          // what the launcher set (spawned workers)
  threadsplit::Hello hello;            // what it read back and reported
  std::optional<threadsplit::Goodbye> goodbye;
  PhaseSums total;
  std::string exit;                    // how it ended, when known
};

class TrainingRun {
 public:
  TrainingRun(const RunSetup& setup, TrainerService& service, std::vector<float> params,
              std::unique_ptr<Optimizer> optimizer, int64_t start_step, int64_t start_epoch,
              int64_t start_step_in_epoch, std::vector<pid_t> local_pids);

  // Every epoch (or --steps), with validation rounds. Throws RunAborted.
  void train(ProgressDisplay& progress);
  // One evaluation round over a split ("validation" or "test"), shared among the workers.
  EvalOutcome evaluate(const std::string& split, ProgressDisplay& progress);
  // Tells every worker to stop and collects their Goodbyes (bounded wait).
  void shutdown(bool failed, const std::string& reason);

  // Called after every completed step and at every epoch end (epoch_end true), in the
  // training thread, for periodic checkpoints.
  void set_after_step(std::function<void(bool epoch_end)> f) { after_step_ = std::move(f); }
  // Ranks still in the run, in rank order.
  std::vector<int> live_ranks() const;
  // One line per worker lost and carried on without (--on-worker-failure continue).
  const std::vector<std::string>& losses() const { return losses_; }

  const std::vector<float>& params() const { return params_; }
  const Optimizer& optimizer() const { return *optimizer_; }
  int64_t step() const { return step_; }
  int64_t epochs_done() const { return epoch_; }
  int64_t step_in_epoch() const { return step_in_epoch_; }
  const std::vector<EpochRecord>& epochs() const { return epochs_; }
  std::vector<WorkerRecord>& workers() { return workers_; }
  double train_seconds() const { return train_seconds_; }
  // Every step of this run, in order (report's timed window, --trace).
  const std::vector<StepTiming>& step_timings() const { return step_timings_; }

 private:
  void run_epoch(ProgressDisplay& progress);
  // Throws WorkerLost when the worker's stream is broken.
  void send(int rank, std::shared_ptr<const threadsplit::CoordinatorMessage> m);
  void send(int rank, const threadsplit::CoordinatorMessage& m);
  // Sends to every live rank; a rank that cannot be reached is lost (policy applies).
  void send_all(std::shared_ptr<const threadsplit::CoordinatorMessage> m, const std::string& during);
  // The next message of a live rank. Throws WorkerLost when a rank's stream ends, a spawned
  // worker exits or is stopped, or a rank in `waiting` stays silent past `deadline_s`.
  // `arrived_s`, when given, is when the message reached its handler.
  threadsplit::WorkerMessage next_message(int* rank, double deadline_s, const std::string& what,
                                          const std::vector<bool>& waiting,
                                          double* arrived_s = nullptr);
  // Applies --on-worker-failure: throws RunAborted (abort, or no survivor), else marks the
  // rank dead, stops it and records why.
  void lose_worker(int rank, const std::string& why);
  // Deals steps [first, last) of `plan` among the live ranks under a new deal id.
  void deal(const EpochPlan& plan, int first, int last);
  std::string describe_worker(int rank);

  struct WorkerLost {
    int rank;
    std::string why;
  };

  const RunSetup& setup_;
  TrainerService& service_;
  std::vector<float> params_;
  std::unique_ptr<Optimizer> optimizer_;
  int64_t step_ = 0;            // global steps done
  int64_t epoch_ = 0;           // epochs done
  int64_t step_in_epoch_ = 0;   // steps done in the current epoch
  int64_t steps_this_run_ = 0;
  int64_t eval_round_ = 0;
  double train_seconds_ = 0;
  std::vector<pid_t> local_pids_;
  std::vector<EpochRecord> epochs_;
  std::vector<WorkerRecord> workers_;
  std::vector<float> sum_;
  // By rank: the sync wait of its latest step, paired with the exchange wait that its next
  // result reports for that step.
  std::vector<double> pending_sync_;
  std::vector<StepTiming> step_timings_;
  std::vector<bool> alive_;                 // by rank
  std::vector<int> live_index_;             // rank -> position among the live ranks, or -1
  uint32_t deal_id_ = 0;
  std::vector<double> stopped_since_;       // spawned rank seen stopped since (0: not)
  StepDeadline deadline_;
  std::vector<std::string> losses_;
  std::function<void(bool)> after_step_;
};

}  // namespace ts
