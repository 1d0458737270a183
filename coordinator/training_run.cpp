#include "training_run.h"

#include <cstring>

#include <algorithm>
#include <cstdio>

#include "epoch_plan.h"
#include "float_packing.h"
#include "process_facts.h"
#include "state_update.h"
#include "stop_signals.h"
#include "timing.h"

namespace ts {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

TrainingRun::TrainingRun(const RunSetup& setup, Membership& members, WorkerTransport& transport,
                         std::vector<float> params, std::unique_ptr<Optimizer> optimizer,
                         int64_t start_step, int64_t start_epoch, int64_t start_step_in_epoch)
    : setup_(setup),
      members_(members),
      params_(std::move(params)),
      optimizer_(std::move(optimizer)),
      // Before a step was timed the first one may build primitives and fill the loader.
      deadline_(setup.options.failure_grace_s, std::max(60.0, setup.options.failure_grace_s),
                setup.options.step_timeout_s),
      collective_(members, transport, setup.run_id, deadline_, setup.options.failure_grace_s),
      reducer_(setup.net.num_params),
      guard_(setup.net),
      step_(start_step),
      epoch_(start_epoch),
      step_in_epoch_(start_step_in_epoch),
      arrived_s_(size_t(setup.world_size), 0.0) {
  collective_.set_max_grad_norm(setup.options.max_grad_norm);
  // --bucket-kb: the gather sums the buckets as they come (gradient_reducer.h).
  reducer_.set_buckets(gradient_buckets(setup.net, size_t(setup.options.bucket_kb) * 1024 / sizeof(float)));
  collective_.set_bucket_reducer(&reducer_);
  // Every epoch's plan has as many steps as the first's. Under --steps, options.steps counts
  // from this run's start (prepare() made a resumed run's the steps left).
  const RunOptions& o = setup.options;
  // prepare() computes it (RunSetup::schedule_steps); a setup made by hand gets the same rule.
  total_steps_ = setup.schedule_steps;
  if (total_steps_ == 0) {
    total_steps_ = int64_t(o.epochs - 1) * plan_for(0).steps() + plan_for(o.epochs - 1).steps();
    if (o.steps > 0) total_steps_ = std::min(total_steps_, start_step + o.steps);
  }
}

EpochPlan TrainingRun::plan_for(int64_t epoch) const {
  const RunOptions& o = setup_.options;
  EpochPlan p = plan_epoch(o.seed, epoch, setup_.split.train_begin, setup_.split.train_end,
                           o.shuffle, setup_.global_batch, o.drop_last, setup_.granule);
  // A fractional --epochs ends the last epoch early: that epoch is this many steps long.
  if (setup_.last_epoch_steps > 0 && epoch == o.epochs - 1)
    p.batches.resize(std::min(p.batches.size(), size_t(setup_.last_epoch_steps)));
  return p;
}

void EpochRecord::close(const std::vector<StepTiming>& records, size_t first, double wall_s,
                        int world_size) {
  seconds = wall_s;
  images_per_s = seconds > 0 ? double(samples) / seconds : 0;
  train_loss = samples ? loss_sum / double(samples) : 0;
  train_accuracy = samples ? double(correct) / double(samples) : 0;
  const size_t end = records.size();
  for (size_t i = first; i < end; ++i) {
    gradient_wait_s += records[i].gradients_s - records[i].start_s;
    update_s += records[i].updated_s - records[i].gradients_s;
  }
  workers.resize(size_t(world_size));
  for (int r = 0; r < world_size; ++r) workers[size_t(r)] = phase_sums(records, first, end, size_t(r));
  shares = phase_shares(records, first, end, world_size, seconds);
}

PhaseSums TrainingRun::worker_totals(int r) const {
  return phase_sums(step_timings_, 0, step_timings_.size(), size_t(r));
}

void TrainingRun::run_step(const EpochPlan& plan, int s, EpochRecord& rec) {
  const size_t batch = plan.batches[size_t(s)].size();
  // The running statistics average whole batch-norm groups (common/network.h).
  const int granule = setup_.net.sample_granule();
  if (batch % size_t(granule) != 0)
    throw RunAborted("step " + std::to_string(step_) + " has " + std::to_string(batch) +
                     " samples, not a whole number of batch-norm groups of " + std::to_string(granule) +
                     ": choose a batch that is a multiple of the group and drop the last partial one");
  // Before the step's clock starts; not once a stop was asked for (the run ends after this
  // step, and a replacement would only delay its final checkpoint).
  if (respawner_ && respawner_->due() && !(stop_check_ && stop_check_())) bring_back_lost();
  // The state before this step's update, for the divergence guard's undo. Nothing changes
  // the parameters or the optimizer between steps, so the copy is taken here, while the
  // workers compute, instead of between the sum and the broadcast, where every worker waits.
  guard_.keep(params_, *optimizer_);
  StepTiming timing;
  timing.step = step_;
  timing.start_s = now_seconds();
  const ResourceUse cpu_start = resource_use();
  timing.cpu_user_start_s = cpu_start.user_s;
  timing.cpu_system_start_s = cpu_start.system_s;
  timing.workers.resize(size_t(setup_.world_size));
  const Stopwatch wait;

  // Gather: every live worker's result of this step (re-dealt if a worker is lost).
  const std::vector<WorkerMessage>& results = collective_.gather_step(step_, s, &arrived_s_);
  const std::vector<int> live = members_.live_ranks();
  const double loss_before = rec.loss_sum;
  const int64_t correct_before = rec.correct;
  for (int r : live) {
    const threadsplit::StepResult& res = results[size_t(r)].step();
    timing.workers[size_t(r)].received_s = arrived_s_[size_t(r)];
    note_result(timing.workers[size_t(r)], res);
    rec.loss_sum += res.loss_sum();
    rec.correct += res.correct();
  }
  deadline_.record(wait.elapsed());

  // Reduce and update: the sum in rank order, then the optimizer on the one copy; a sum or
  // a state that is not finite stops the run with the state before this step.
  timing.gradients_s = now_seconds();
  std::vector<bool> has_gradient(size_t(setup_.world_size), false);
  for (int r : live) has_gradient[size_t(r)] = results[size_t(r)].step().samples() > 0;
  const std::vector<float>& sum = plane_              ? reducer_.reduce_slots(*plane_, live, has_gradient)
                                  : reducer_.bucketed() ? reducer_.sum()
                                                        : reducer_.reduce(results, live);
  auto diverged = [&](const std::string& what) {
    rec.loss_sum = loss_before;  // the step did not happen
    rec.correct = correct_before;
    throw RunDiverged("the run diverged at step " + std::to_string(step_) + " (" + what +
                      "); stopped with the parameters of step " + std::to_string(step_) +
                      ", the last good state, checkpointed (lower --lr, or resume from an earlier checkpoint)");
  };
  const std::string bad_sum = guard_.first_nonfinite(sum.data());
  if (!bad_sum.empty()) diverged("the gradient sum: " + bad_sum);
  // The optimizer at the schedule's rate, the running statistics, the lookahead.
  rec.lr_factor = update_state(setup_.net, *optimizer_, params_.data(), sum.data(),
                               int64_t(batch) / granule, step_, total_steps_);
  // After all of it: a running statistic or the EMA that is not finite is a divergence too.
  const std::string bad_state = guard_.check_state(params_, *optimizer_);
  if (!bad_state.empty()) {
    guard_.restore(&params_, optimizer_.get());
    diverged(bad_state + ", after the update");
  }
  // Broadcast: one message for every worker; each link writes it from the same bytes.
  auto m = std::make_shared<CoordinatorMessage>();
  threadsplit::Params* p = m->mutable_params();
  p->set_run_id(setup_.run_id);
  p->set_step(step_);
  if (plane_) {
    // Every worker read the last step's parameters before it sent this step's result.
    std::memcpy(plane_->params(), params_.data(), params_.size() * sizeof(float));
    release_to_peer();
    p->set_in_shared_memory(true);
  } else {
    pack_floats(params_.data(), params_.size(), p->mutable_params());
  }
  timing.updated_s = now_seconds();
  // The step is done once the parameters are updated: a run that aborts while they are on
  // their way checkpoints them as this step's result, not as the step before it.
  const std::string during = "after step " + std::to_string(step_);
  ++step_;
  ++step_in_epoch_;
  ++steps_this_run_;
  ++rec.steps;
  rec.samples += int64_t(batch);
  rec.step_losses.push_back((rec.loss_sum - loss_before) / double(batch));
  collective_.broadcast(m, during);
  timing.end_s = now_seconds();
  const ResourceUse cpu_end = resource_use();
  timing.cpu_user_end_s = cpu_end.user_s;
  timing.cpu_system_end_s = cpu_end.system_s;
  timing.samples = int64_t(batch);
  step_timings_.push_back(std::move(timing));
}

void TrainingRun::bring_back_lost() {
  const std::vector<int> back = respawner_->bring_back(step_);
  for (int r : back) collective_.readmitted(r);
  // The new process builds its primitives and fills its loader in this step.
  if (!back.empty()) deadline_.forget();
}

std::vector<RespawnRecord> TrainingRun::respawns() const {
  return respawner_ ? respawner_->respawns() : std::vector<RespawnRecord>{};
}

void TrainingRun::run_epoch(ProgressDisplay& progress) {
  const RunOptions& o = setup_.options;
  const int first = int(step_in_epoch_);
  {
    EpochPlan planned = plan_for(epoch_);
    int last = planned.steps();
    if (o.steps > 0) last = int(std::min<int64_t>(last, first + (o.steps - steps_this_run_)));
    collective_.deal_epoch(std::move(planned), epoch_, first, last, step_);
  }
  const EpochPlan& plan = collective_.plan();
  const int last = collective_.dealt_end();
  // prepare() refuses a saved position beyond the plan; were one to get here, stop rather
  // than print empty epochs forever.
  if (first >= last)
    throw RunAborted("no step left to train at position " + std::to_string(first) + " of epoch " +
                     std::to_string(epoch_ + 1) + " (" + std::to_string(plan.steps()) + " steps)");

  // airbench trains the whitening bias in the first --whiten-bias-epochs epochs only.
  set_whitening_bias_for_epoch(*optimizer_, setup_.net, epoch_, o.whiten_bias_epochs);
  EpochRecord rec;
  rec.epoch = epoch_ + 1;
  rec.planned_steps = plan.steps();
  const size_t first_record = step_timings_.size();
  const Stopwatch wall;
  try {
    for (int s = first; s < last; ++s) {
      run_step(plan, s, rec);
      const double t = wall.elapsed();
      progress.step(epoch_ + 1, o.epochs, s + 1, plan.steps(), rec.loss_sum / double(rec.samples),
                    t > 0 ? double(rec.samples) / t : 0);
      if (after_step_ && s + 1 < plan.steps()) after_step_(false);
      // The epoch's last step is followed by its end (the epoch counted, its checkpoint):
      // train() asks there.
      if (s + 1 < last && stop_check_)
        if (const int sig = stop_check_()) throw StopRequested(sig);
    }
  } catch (const RunAborted&) {
    // The steps that ran before the run failed still count: the report keeps them.
    rec.close(step_timings_, first_record, wall.elapsed(), setup_.world_size);
    train_seconds_ += rec.seconds;
    rec.aborted = true;
    epochs_.push_back(std::move(rec));
    throw;
  } catch (const StopRequested&) {
    rec.close(step_timings_, first_record, wall.elapsed(), setup_.world_size);
    train_seconds_ += rec.seconds;
    rec.interrupted = true;
    progress.line(epoch_line(rec));
    epochs_.push_back(std::move(rec));
    throw;
  }
  rec.close(step_timings_, first_record, wall.elapsed(), setup_.world_size);
  train_seconds_ += rec.seconds;
  const bool epoch_done = step_in_epoch_ == plan.steps();
  if (epoch_done) {
    ++epoch_;
    step_in_epoch_ = 0;
  }
  epochs_.push_back(std::move(rec));
  if (after_step_ && epoch_done) after_step_(true);
}

std::string TrainingRun::epoch_line(const EpochRecord& rec) const {
  const RunOptions& o = setup_.options;
  char line[512];
  int n = std::snprintf(line, sizeof line, "epoch %lld/%d: %.1f s, %.0f img/s, loss %.4f acc %.4f",
                        (long long)rec.epoch, o.epochs, rec.seconds, rec.images_per_s,
                        rec.train_loss, rec.train_accuracy);
  if (optimizer_->config().lr_schedule != "constant")
    n += std::snprintf(line + n, sizeof line - size_t(n), ", lr x%.3f", rec.lr_factor);
  if (rec.validation)
    n += std::snprintf(line + n, sizeof line - size_t(n), ", %s loss %.4f acc %.4f",
                       rec.validation->split == "test" ? "test" : "val", rec.validation->loss,
                       rec.validation->accuracy);
  n += std::snprintf(line + n, sizeof line - size_t(n),
                     " | data %.0f%% fwd %.0f%% bwd %.0f%% exchange %.1f%% (update %.1f%%) "
                     "sync wait %.1f%%",
                     100 * rec.shares.data_wait, 100 * rec.shares.forward, 100 * rec.shares.backward,
                     100 * rec.shares.exchange, 100 * rec.shares.update, 100 * rec.shares.sync_wait);
  if (rec.steps < rec.planned_steps)
    std::snprintf(line + n, sizeof line - size_t(n), " (stopped after %d of %d steps)", rec.steps,
                  rec.planned_steps);
  return line;
}

void TrainingRun::train(ProgressDisplay& progress) {
  const RunOptions& o = setup_.options;
  auto budget_left = [&] { return o.steps == 0 || steps_this_run_ < o.steps; };
  while (epoch_ < o.epochs && budget_left()) {
    run_epoch(progress);
    EpochRecord& rec = epochs_.back();
    const bool finished = epoch_ >= o.epochs || !budget_left();
    if (stop_check_)
      if (const int sig = stop_check_()) {
        rec.interrupted = !finished;
        progress.line(epoch_line(rec));
        throw StopRequested(sig);
      }
    if (o.eval_every > 0 && (rec.epoch % o.eval_every == 0 || finished))
      // No records held out (--validation-split 0): the epoch lines show test accuracy, as
      // airbench's do (without test-time augmentation; the final test round has it).
      rec.validation = evaluate(setup_.split.val_size() > 0 ? "validation" : "test", progress);
    progress.line(epoch_line(rec));
    // A signal during the validation round: the epoch is whole; stop before the next deal.
    if (stop_check_ && !finished)
      if (const int sig = stop_check_()) throw StopRequested(sig);
  }
}

EvalOutcome TrainingRun::evaluate(const std::string& split, ProgressDisplay& progress, int tta) {
  std::vector<int32_t> all;
  if (split == "validation") {
    for (int i = setup_.split.val_begin; i < setup_.split.val_end; ++i) all.push_back(i);
  } else {
    for (int i = 0; i < kCifarTestRecords; ++i) all.push_back(i);
  }
  EvalOutcome out;
  out.split = split;
  out.tta = tta;
  if (all.empty()) return out;
  progress.status("evaluating " + split + " (" + std::to_string(all.size()) + " records) ...");
  const Stopwatch wall;
  // A worker lost under --on-worker-failure continue restarts the round among the others.
  const std::vector<WorkerMessage>* results = nullptr;
  while (!(results = collective_.eval_round(split, all, setup_.options.eval_batch,
                                            setup_.options.step_timeout_s, tta))) {
  }
  double loss_sum = 0;
  int64_t correct = 0;
  for (int r : members_.live_ranks()) {
    loss_sum += (*results)[size_t(r)].eval().loss_sum();
    correct += (*results)[size_t(r)].eval().correct();
  }
  out.samples = int64_t(all.size());
  out.loss = loss_sum / double(out.samples);
  out.accuracy = double(correct) / double(out.samples);
  out.seconds = wall.elapsed();
  progress.clear();
  return out;
}

void TrainingRun::shutdown(bool failed, const std::string& reason) {
  collective_.shutdown(failed, reason, 10);
}

}  // namespace ts
