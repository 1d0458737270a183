// The schedule of a run, once every worker has joined:
//   per epoch: plan it (common/epoch_plan.h) and deal every worker its indices for every step;
//   per step:  gather every worker's result -> reduce (sum in rank order) -> optimizer step
//              on the one authoritative parameter copy (the schedule's learning rate), the
//              batch-norm running statistics from the sum, the lookahead EMA every
//              --lookahead-every steps -> broadcast the parameters;
//   evaluate the validation records after every --eval-every epochs, the test set at the end;
//   keep a record of every epoch and every step.
// Who is alive and what a loss means: coordinator/membership.h. Dealing, gathering, stale
// results and re-dealing: coordinator/collective.h. The sum: coordinator/gradient_reducer.h.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cifar10.h"
#include "collective.h"
#include "core_set.h"
#include "divergence_guard.h"
#include "epoch_plan.h"
#include "gradient_reducer.h"
#include "membership.h"
#include "network.h"
#include "optimizer.h"
#include "progress_display.h"
#include "respawner.h"
#include "run_options.h"
#include "run_setup.h"
#include "shared_plane.h"
#include "step_deadline.h"
#include "step_timing.h"
#include "trainer.pb.h"
#include "worker_events.h"

namespace ts {

struct EvalOutcome {
  std::string split;
  int tta = 0;                        // test-time augmentation level (EvalRequest.tta_level)
  int64_t samples = 0;
  double loss = 0, accuracy = 0;
  double seconds = 0;
};

struct EpochRecord {
  int64_t epoch = 0;                  // 1-based for people
  int steps = 0, planned_steps = 0;
  bool aborted = false;               // the run failed during this epoch (steps: those done)
  bool interrupted = false;           // a stop signal ended the run during this epoch
  int64_t samples = 0;
  double seconds = 0;                 // training steps only, evaluation excluded
  double images_per_s = 0;
  double train_loss = 0, train_accuracy = 0;
  double loss_sum = 0;                // of every sample trained
  int64_t correct = 0;
  std::vector<double> step_losses;    // mean training loss of each step, in order
  double lr_factor = 1;               // the schedule's factor at the epoch's last step
  std::optional<EvalOutcome> validation;  // validation records, or the test set when none are held out
  // Derived from the epoch's step records when it closes.
  double gradient_wait_s = 0;         // coordinator waiting for the slowest gradient
  double update_s = 0;                // coordinator: sum + optimizer + packing parameters
  std::vector<PhaseSums> workers;     // by rank
  // Of the epoch's wall time. A step's exchange arrives with the next step's result, so the
  // epoch's last step's exchange (and sync wait) is counted in no epoch: the epoch's exchange
  // and sync shares run low by about 1/steps. The timed window has no such gap.
  PhaseShares shares;
  // Ends the record: its wall time (training steps only) and the figures derived from
  // steps[first, end), its steps' records.
  void close(const std::vector<StepTiming>& steps, size_t first, double wall_s, int world_size);
};

class TrainingRun {
 public:
  // `members` knows the joined workers; `transport` reaches them.
  TrainingRun(const RunSetup& setup, Membership& members, WorkerTransport& transport,
              std::vector<float> params, std::unique_ptr<Optimizer> optimizer, int64_t start_step,
              int64_t start_epoch, int64_t start_step_in_epoch);

  // Every epoch (or --steps), with validation rounds. Throws RunAborted (RunDiverged when
  // the run diverged: params() and optimizer() are then the last good state), or
  // StopRequested.
  void train(ProgressDisplay& progress);
  // One evaluation round over a split ("validation" or "test"), shared among the workers,
  // with test-time augmentation `tta` (0: none).
  EvalOutcome evaluate(const std::string& split, ProgressDisplay& progress, int tta = 0);
  // Tells every worker to stop and collects their Goodbyes (bounded wait).
  void shutdown(bool failed, const std::string& reason);

  // Called after every completed step and at every epoch end (epoch_end true), in the
  // training thread, for periodic checkpoints.
  void set_after_step(std::function<void(bool epoch_end)> f) { after_step_ = std::move(f); }
  // Asked after every step and every epoch: a non-zero answer (a signal number) ends the
  // run there, throwing StopRequested (coordinator/stop_signals.h) once the step is done
  // and its periodic checkpoint written; validation and test rounds are skipped.
  void set_stop_check(std::function<int()> f) { stop_check_ = std::move(f); }
  // One line per worker lost and carried on without (--on-worker-failure continue).
  const std::vector<std::string>& lost_workers() const { return members_.lost_workers(); }
  // --respawn: lost ranks are replaced at the next step boundary (coordinator/respawner.h).
  void set_respawner(Respawner* r) { respawner_ = r; }
  // --data-plane shm: gradients are read from the plane's slots and parameters written to it
  // (common/shared_plane.h); null: both travel in the messages.
  void set_shared_plane(const SharedPlane* plane) {
    plane_ = plane;
    collective_.set_shared_plane(plane);
  }
  // Each replacement (none without --respawn).
  std::vector<RespawnRecord> respawns() const;

  const std::vector<float>& params() const { return params_; }
  const Optimizer& optimizer() const { return *optimizer_; }
  int64_t step() const { return step_; }
  int64_t steps_this_run() const { return steps_this_run_; }
  // The run's total steps from step 0 (--epochs x steps per epoch, or fewer under --steps):
  // the T of the learning-rate schedule and the lookahead.
  int64_t total_steps() const { return total_steps_; }
  int64_t epochs_done() const { return epoch_; }
  int64_t step_in_epoch() const { return step_in_epoch_; }
  const std::vector<EpochRecord>& epochs() const { return epochs_; }
  const std::vector<WorkerRecord>& workers() const { return members_.workers(); }
  double train_seconds() const { return train_seconds_; }
  // Every step of this run, in order (report's timed window, --trace).
  const std::vector<StepTiming>& step_timings() const { return step_timings_; }
  // Worker r's phases over every step of this run.
  PhaseSums worker_totals(int r) const;

 private:
  // The plan of epoch `epoch` (0-based): every epoch's, and the total steps' count.
  EpochPlan plan_for(int64_t epoch) const;
  void run_epoch(ProgressDisplay& progress);
  // One global step: gather -> reduce -> update -> broadcast. `s` is its index in `plan`.
  // Throws RunDiverged, the state left as it was before the step, when the gradient sum or
  // the updated state is not finite.
  void run_step(const EpochPlan& plan, int s, EpochRecord& rec);
  // Replaces the ranks lost since the last step (--respawn) and has the step re-dealt.
  void bring_back_lost();
  // The epoch's line: time, rate, loss, accuracy, validation, phase shares.
  std::string epoch_line(const EpochRecord& rec) const;

  const RunSetup& setup_;
  Membership& members_;
  std::vector<float> params_;
  std::unique_ptr<Optimizer> optimizer_;
  StepDeadline deadline_;
  Collective collective_;
  GradientReducer reducer_;
  DivergenceGuard guard_;       // the state before each update, and the finite checks
  int64_t step_ = 0;            // global steps done
  int64_t epoch_ = 0;           // epochs done
  int64_t step_in_epoch_ = 0;   // steps done in the current epoch
  int64_t steps_this_run_ = 0;
  int64_t total_steps_ = 0;
  double train_seconds_ = 0;
  std::vector<EpochRecord> epochs_;
  std::vector<double> arrived_s_;           // by rank, this step's
  std::vector<StepTiming> step_timings_;
  std::function<void(bool)> after_step_;
  Respawner* respawner_ = nullptr;
  const SharedPlane* plane_ = nullptr;
  std::function<int()> stop_check_;
};

}  // namespace ts
