#include "training_run.h"

#include <algorithm>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "epoch_plan.h"
#include "float_packing.h"
#include "timing.h"
#include "trainer_service.h"
#include "worker_launcher.h"

namespace ts {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

void PhaseSums::add(const threadsplit::PhaseTimes& t) {
  data_wait += t.data_wait_s();
  forward += t.forward_s();
  backward += t.backward_s();
  exchange_wait += t.exchange_wait_s();
  apply_params += t.apply_params_s();
}

void PhaseSums::add(const PhaseSums& o) {
  data_wait += o.data_wait;
  forward += o.forward;
  backward += o.backward;
  exchange_wait += o.exchange_wait;
  apply_params += o.apply_params;
  sync_wait += o.sync_wait;
}

namespace {

const char* message_kind(const WorkerMessage& m) {
  switch (m.body_case()) {
    case WorkerMessage::kHello: return "Hello";
    case WorkerMessage::kStep: return "StepResult";
    case WorkerMessage::kEval: return "EvalResult";
    case WorkerMessage::kGoodbye: return "Goodbye";
    default: return "an empty message";
  }
}

}  // namespace

TrainingRun::TrainingRun(const RunSetup& setup, TrainerService& service, std::vector<float> params,
                         std::unique_ptr<Optimizer> optimizer, int64_t start_step,
                         int64_t start_epoch, int64_t start_step_in_epoch,
                         std::vector<pid_t> local_pids)
    : setup_(setup),
      service_(service),
      params_(std::move(params)),
      optimizer_(std::move(optimizer)),
      step_(start_step),
      epoch_(start_epoch),
      step_in_epoch_(start_step_in_epoch),
      local_pids_(std::move(local_pids)),
      workers_(size_t(setup.world_size)),
      sum_(setup.net.num_params),
      pending_sync_(size_t(setup.world_size), 0.0),
      alive_(size_t(setup.world_size), true),
      live_index_(size_t(setup.world_size)),
      stopped_since_(size_t(setup.world_size), 0.0),
      // Before a step was timed the first one may build primitives and fill the loader.
      deadline_(setup.options.failure_grace_s, std::max(60.0, setup.options.failure_grace_s),
                setup.options.step_timeout_s) {
  for (int r = 0; r < setup.world_size; ++r) live_index_[size_t(r)] = r;
  for (int r = 0; r < setup.world_size; ++r) {
    WorkerRecord& w = workers_[size_t(r)];
    w.rank = r;
    auto link = service_.link(r);
    if (link) w.hello = link->hello();
    w.spawned = size_t(r) < local_pids_.size() && local_pids_[size_t(r)] > 0;
    w.pid = w.spawned ? local_pids_[size_t(r)] : w.hello.binding().pid();
    if (size_t(r) < setup.worker_cores.size()) w.assigned_cores = setup.worker_cores[size_t(r)].to_string();
  }
}

std::string TrainingRun::describe_worker(int rank) {
  const WorkerRecord& w = workers_[size_t(rank)];
  std::string s = "worker " + std::to_string(rank) + " (pid " + std::to_string(w.pid);
  if (!w.assigned_cores.empty()) s += ", cores " + w.assigned_cores;
  s += ")";
  if (w.spawned) {
    // Give a dying process a moment to be reaped, so the message can say how it ended.
    for (int i = 0; i < 20; ++i) {
      int status = 0;
      if (worker_exited(w.pid, &status)) {
        workers_[size_t(rank)].exit = describe_wait_status(status);
        local_pids_[size_t(rank)] = -1;
        workers_[size_t(rank)].spawned = false;
        return s + ", which " + workers_[size_t(rank)].exit + ",";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return s;
}

std::vector<int> TrainingRun::live_ranks() const {
  std::vector<int> live;
  for (int r = 0; r < setup_.world_size; ++r)
    if (alive_[size_t(r)]) live.push_back(r);
  return live;
}

void TrainingRun::send(int rank, std::shared_ptr<const CoordinatorMessage> m) {
  auto link = service_.link(rank);
  if (!link || !link->send(std::move(m))) throw WorkerLost{rank, "can no longer be reached"};
}

void TrainingRun::send(int rank, const CoordinatorMessage& m) {
  send(rank, std::make_shared<const CoordinatorMessage>(m));
}

void TrainingRun::send_all(std::shared_ptr<const CoordinatorMessage> m, const std::string& during) {
  for (int r : live_ranks()) {
    try {
      send(r, m);
    } catch (const WorkerLost& lost) {
      lose_worker(lost.rank, lost.why + " " + during);
    }
  }
}

void TrainingRun::lose_worker(int rank, const std::string& why) {
  const std::string who = describe_worker(rank);
  alive_[size_t(rank)] = false;
  WorkerRecord& w = workers_[size_t(rank)];
  if (w.spawned && w.pid > 0) {
    // It may be stopped or hung: it is not coming back, and must not linger on its cores.
    const int st = stop_worker(w.pid, 0);
    if (w.exit.empty()) w.exit = describe_wait_status(st);
    local_pids_[size_t(rank)] = -1;
    w.spawned = false;
  }
  if (w.exit.empty()) w.exit = "lost: " + why;
  if (auto link = service_.link(rank)) link->release();
  if (setup_.options.on_worker_failure != "continue") throw RunAborted(who + " " + why);
  if (live_ranks().empty()) throw RunAborted(who + " " + why + ", and it was the last worker");
  int i = 0;
  for (int r = 0; r < setup_.world_size; ++r) live_index_[size_t(r)] = alive_[size_t(r)] ? i++ : -1;
  const std::string line = who + " " + why + "; continuing with " + std::to_string(i) + " of " +
                           std::to_string(setup_.world_size) + " workers";
  losses_.push_back(line);
  std::fprintf(stderr, "threadsplit: WORKER LOST: %s\n", line.c_str());
}

void TrainingRun::deal(const EpochPlan& plan, int first, int last) {
  // Every live worker gets its share of every step of this epoch (that will run) up front,
  // so its loader can work ahead.
  ++deal_id_;
  const std::vector<int> live = live_ranks();
  const int n = int(live.size());
  for (int r : live) {
    CoordinatorMessage m;
    threadsplit::EpochDeal* d = m.mutable_deal();
    d->set_run_id(setup_.run_id);
    d->set_epoch(epoch_);
    d->set_first_step(step_);
    d->set_deal_id(deal_id_);
    for (int s = first; s < last; ++s) {
      threadsplit::StepShare* share = d->add_steps();
      const std::vector<int32_t> idx = plan.share(s, live_index_[size_t(r)], n);
      share->mutable_indices()->Add(idx.begin(), idx.end());
      share->set_global_batch(int(plan.batches[size_t(s)].size()));
    }
    send(r, m);
  }
}

WorkerMessage TrainingRun::next_message(int* rank, double deadline_s, const std::string& what,
                                        const std::vector<bool>& waiting, double* arrived_s) {
  const double start = now_seconds();
  const double grace = setup_.options.failure_grace_s;
  while (true) {
    auto e = service_.events().pop(0.1);
    if (e) {
      if (e->rank < 0 || e->rank >= setup_.world_size || !alive_[size_t(e->rank)]) continue;
      *rank = e->rank;
      if (e->closed && e->fatal) {
        // Its stream is over: no Shutdown to wait for.
        alive_[size_t(e->rank)] = false;
        if (auto link = service_.link(e->rank)) link->release();
        throw RunAborted(describe_worker(e->rank) + " " + e->why + " " + what +
                         ": the run diverged or the worker is faulty; stopped before the "
                         "parameters were touched (lower --lr, or resume from the last checkpoint)");
      }
      if (e->closed) throw WorkerLost{e->rank, "left " + what + ": " + e->why};
      if (arrived_s) *arrived_s = e->arrived_s;
      return std::move(e->message);
    }
    const double now = now_seconds();
    // Spawned workers: an exit is seen at once, a stop after the grace period.
    for (int r : live_ranks()) {
      const WorkerRecord& w = workers_[size_t(r)];
      if (!w.spawned || w.pid <= 0) continue;
      int status = 0;
      if (worker_exited(w.pid, &status)) {
        workers_[size_t(r)].exit = describe_wait_status(status);
        workers_[size_t(r)].spawned = false;
        local_pids_[size_t(r)] = -1;
        throw WorkerLost{r, workers_[size_t(r)].exit + " " + what};
      }
      double& since = stopped_since_[size_t(r)];
      if (!process_stopped(w.pid)) {
        since = 0;
      } else if (since == 0) {
        since = now;
      } else if (now - since > grace) {
        throw WorkerLost{r, "was stopped (SIGSTOP or a debugger) for " + std::to_string(int(now - since)) +
                                " s " + what};
      }
    }
    if (now - start > deadline_s) {
      for (int r : live_ranks())
        if (waiting[size_t(r)]) {
          // Say why where we can see it: a stopped process, not a slow one.
          const WorkerRecord& w = workers_[size_t(r)];
          if (w.spawned && w.pid > 0 && process_stopped(w.pid))
            throw WorkerLost{r, "was stopped (SIGSTOP or a debugger) and did not answer " + what +
                                    " within " + std::to_string(int(deadline_s)) + " s"};
          char why[256];
          std::snprintf(why, sizeof why,
                        "did not answer %s within %.1f s (slowest recent step %.2f s + --failure-grace %.1f s)",
                        what.c_str(), deadline_s, deadline_.slowest_recent(), grace);
          throw WorkerLost{r, why};
        }
      throw RunAborted("no worker answered " + what + " within " + std::to_string(int(deadline_s)) + " s");
    }
  }
}

void TrainingRun::run_epoch(ProgressDisplay& progress) {
  const RunOptions& o = setup_.options;
  const int P = setup_.world_size;
  const EpochPlan plan = plan_epoch(o.seed, epoch_, setup_.split.train_begin,
                                    setup_.split.train_end, o.shuffle, setup_.global_batch);
  const int first = int(step_in_epoch_);
  int last = plan.steps();
  if (o.steps > 0) last = int(std::min<int64_t>(last, first + (o.steps - steps_this_run_)));

  bool redeal = false;  // a worker was lost: the rest of the epoch goes to the survivors
  try {
    deal(plan, first, last);
  } catch (const WorkerLost& lost) {
    lose_worker(lost.rank, lost.why + " (epoch " + std::to_string(epoch_ + 1) + " deal)");
    redeal = true;
  }

  EpochRecord rec;
  rec.epoch = epoch_ + 1;
  rec.planned_steps = plan.steps();
  rec.workers.resize(size_t(P));
  double loss_sum = 0;
  int64_t correct = 0;
  std::vector<bool> received(static_cast<size_t>(P));
  std::vector<bool> empty(static_cast<size_t>(P));
  std::vector<bool> waiting(static_cast<size_t>(P));
  std::vector<threadsplit::StepResult> results(static_cast<size_t>(P));
  const Stopwatch wall;
  auto close_record = [&] {
    rec.seconds = wall.elapsed();
    train_seconds_ += rec.seconds;
    rec.images_per_s = rec.seconds > 0 ? double(rec.samples) / rec.seconds : 0;
    rec.train_loss = rec.samples ? loss_sum / double(rec.samples) : 0;
    rec.train_accuracy = rec.samples ? double(correct) / double(rec.samples) : 0;
    if (rec.seconds > 0) {
      for (const PhaseSums& w : rec.workers) {
        rec.data_share += w.data_wait / rec.seconds / P;
        rec.forward_share += w.forward / rec.seconds / P;
        rec.backward_share += w.backward / rec.seconds / P;
        rec.exchange_share += std::max(0.0, w.exchange_wait - w.sync_wait) / rec.seconds / P;
        rec.sync_share += w.sync_wait / rec.seconds / P;
      }
      rec.update_share = rec.update_s / rec.seconds;
    }
  };
  try {
    for (int s = first; s < last; ++s) {
      const std::vector<int32_t>& batch = plan.batches[size_t(s)];
      const std::string what = "during step " + std::to_string(step_);
      const Stopwatch wait;
      StepTiming timing;
      timing.step = step_;
      timing.start_s = now_seconds();
      timing.workers.resize(size_t(P));
      while (true) {  // until every live rank's result for this step is in
        try {
          if (redeal) {
            deal(plan, s, last);
            redeal = false;
            std::fprintf(stderr, "threadsplit: re-dealt steps %lld..%lld of epoch %lld among %d "
                         "workers; each step keeps its global batch of %zu, so the math is "
                         "unchanged (up to float summation order)\n",
                         (long long)step_, (long long)(step_ + (last - s) - 1), (long long)epoch_ + 1,
                         int(live_ranks().size()), batch.size());
          }
          const std::vector<int> live = live_ranks();
          const int n = int(live.size());
          for (int r = 0; r < P; ++r) {
            received[size_t(r)] = false;
            waiting[size_t(r)] = alive_[size_t(r)];
          }
          for (int got = 0; got < n;) {
            int r = -1;
            double arrived = 0;
            service_.events().set_step_gate(n - got);
            WorkerMessage msg = next_message(&r, deadline_.seconds(), what, waiting, &arrived);
            if (!msg.has_step()) throw WorkerLost{r, std::string("sent ") + message_kind(msg) + " " + what};
            threadsplit::StepResult& res = *msg.mutable_step();
            // A result computed under a deal before the latest re-deal is stale, not wrong.
            if (res.deal_id() < deal_id_ && res.step() == step_) continue;
            const int expect = worker_share(int(batch.size()), n, live_index_[size_t(r)]).count;
            // The run id, the loss, the accuracy counts, the gradient's size and its values
            // were checked as the message was read (check_worker_message); what is left needs
            // this loop's state.
            std::string bad;
            if (res.deal_id() != deal_id_) bad = "a result for deal " + std::to_string(res.deal_id());
            else if (res.step() != step_) bad = "a result for step " + std::to_string(res.step());
            else if (received[size_t(r)]) bad = "a second result";
            else if (res.samples() != expect)
              bad = "a result for " + std::to_string(res.samples()) + " samples instead of " + std::to_string(expect);
            // Only an empty share may come without a gradient (summed from the bytes below).
            empty[size_t(r)] = res.gradient().empty();
            if (!bad.empty()) {
              std::fprintf(stderr, "threadsplit: refused from %s: %s %s\n", describe_worker(r).c_str(),
                           bad.c_str(), what.c_str());
              throw WorkerLost{r, "sent " + bad + " " + what};
            }
            received[size_t(r)] = true;
            waiting[size_t(r)] = false;
            results[size_t(r)].Swap(&res);  // the gradient's bytes move, not copied
            timing.workers[size_t(r)].received_s = arrived;
            ++got;
          }
          break;
        } catch (const WorkerLost& lost) {
          lose_worker(lost.rank, lost.why);
          redeal = true;
        }
      }
      service_.events().set_step_gate(0);
      const double loss_before = loss_sum;
      for (int r : live_ranks()) {
        const threadsplit::StepResult& res = results[size_t(r)];
        PhaseSums phases;
        phases.add(res.times());
        phases.sync_wait = pending_sync_[size_t(r)];  // the step its exchange wait belongs to
        pending_sync_[size_t(r)] = sync_wait(timing, size_t(r));
        rec.workers[size_t(r)].add(phases);
        workers_[size_t(r)].total.add(phases);
        note_result(timing.workers[size_t(r)], res);
        loss_sum += res.loss_sum();
        correct += res.correct();
      }
      rec.gradient_wait_s += wait.elapsed();
      deadline_.record(wait.elapsed());

      timing.gradients_s = now_seconds();
      const Stopwatch update;
      // Rank order, always: the sum (and so the run) is the same on every repetition.
      std::fill(sum_.begin(), sum_.end(), 0.f);
      for (int r : live_ranks()) {
        if (empty[size_t(r)]) continue;
        add_packed_floats(results[size_t(r)].gradient(), sum_.data(), sum_.size());
      }
      optimizer_->step(params_.data(), sum_.data());
      // One message for every worker: each link writes it from the same bytes.
      auto m = std::make_shared<CoordinatorMessage>();
      threadsplit::Params* p = m->mutable_params();
      p->set_run_id(setup_.run_id);
      p->set_step(step_);
      pack_floats(params_.data(), params_.size(), p->mutable_params());
      rec.update_s += update.elapsed();
      timing.updated_s = now_seconds();
      const size_t live_before = live_ranks().size();
      send_all(m, "after step " + std::to_string(step_));
      redeal = redeal || live_ranks().size() != live_before;

      timing.end_s = now_seconds();
      timing.samples = int64_t(batch.size());
      step_timings_.push_back(std::move(timing));

      ++step_;
      ++step_in_epoch_;
      ++steps_this_run_;
      ++rec.steps;
      rec.samples += int64_t(batch.size());
      rec.step_losses.push_back((loss_sum - loss_before) / double(batch.size()));
      const double t = wall.elapsed();
      progress.step(epoch_ + 1, o.epochs, s + 1, plan.steps(), loss_sum / double(rec.samples),
                    t > 0 ? double(rec.samples) / t : 0);
      if (after_step_ && s + 1 < plan.steps()) after_step_(false);
    }
  } catch (const RunAborted&) {
    service_.events().set_step_gate(0);  // shutdown() still has Goodbyes to read
    // The steps that ran before the run failed still count: the report keeps them.
    close_record();
    rec.aborted = true;
    epochs_.push_back(std::move(rec));
    throw;
  }
  close_record();
  const bool epoch_done = step_in_epoch_ == plan.steps();
  if (epoch_done) {
    ++epoch_;
    step_in_epoch_ = 0;
  }
  epochs_.push_back(std::move(rec));
  if (after_step_ && epoch_done) after_step_(true);
}

void TrainingRun::train(ProgressDisplay& progress) {
  const RunOptions& o = setup_.options;
  auto budget_left = [&] { return o.steps == 0 || steps_this_run_ < o.steps; };
  while (epoch_ < o.epochs && budget_left()) {
    run_epoch(progress);
    EpochRecord& rec = epochs_.back();
    const bool finished = epoch_ >= o.epochs || !budget_left();
    if (o.eval_every > 0 && (rec.epoch % o.eval_every == 0 || finished))
      rec.validation = evaluate("validation", progress);
    char line[512];
    int n = std::snprintf(line, sizeof line, "epoch %lld/%d: %.1f s, %.0f img/s, loss %.4f acc %.4f",
                          (long long)rec.epoch, o.epochs, rec.seconds, rec.images_per_s,
                          rec.train_loss, rec.train_accuracy);
    if (rec.validation)
      n += std::snprintf(line + n, sizeof line - size_t(n), ", val loss %.4f acc %.4f",
                         rec.validation->loss, rec.validation->accuracy);
    n += std::snprintf(line + n, sizeof line - size_t(n),
                       " | data %.0f%% fwd %.0f%% bwd %.0f%% exchange %.1f%% (update %.1f%%) "
                       "sync wait %.1f%%",
                       100 * rec.data_share, 100 * rec.forward_share, 100 * rec.backward_share,
                       100 * rec.exchange_share, 100 * rec.update_share, 100 * rec.sync_share);
    if (rec.steps < rec.planned_steps)
      std::snprintf(line + n, sizeof line - size_t(n), " (stopped after %d of %d steps)", rec.steps,
                    rec.planned_steps);
    progress.line(line);
  }
}

EvalOutcome TrainingRun::evaluate(const std::string& split, ProgressDisplay& progress) {
  const int P = setup_.world_size;
  std::vector<int32_t> all;
  if (split == "validation") {
    for (int i = setup_.split.val_begin; i < setup_.split.val_end; ++i) all.push_back(i);
  } else {
    for (int i = 0; i < kCifarTestRecords; ++i) all.push_back(i);
  }
  EvalOutcome out;
  out.split = split;
  if (all.empty()) return out;
  progress.status("evaluating " + split + " (" + std::to_string(all.size()) + " records) ...");
  const Stopwatch wall;
  const std::string what = "during " + split + " evaluation";
  while (true) {  // a worker lost under --on-worker-failure continue restarts the round
    const int64_t round = eval_round_++;
    const std::vector<int> live = live_ranks();
    const auto shares = split_among_workers(all, int(live.size()));
    double loss_sum = 0;
    int64_t correct = 0;
    std::vector<bool> received(static_cast<size_t>(P));
    std::vector<bool> waiting(alive_);
    try {
      for (int r : live) {
        CoordinatorMessage m;
        threadsplit::EvalRequest* q = m.mutable_eval();
        q->set_run_id(setup_.run_id);
        q->set_round(round);
        q->set_split(split);
        const auto& share = shares[size_t(live_index_[size_t(r)])];
        q->mutable_indices()->Add(share.begin(), share.end());
        q->set_batch(setup_.options.eval_batch);
        send(r, m);
      }
      for (size_t got = 0; got < live.size();) {
        int r = -1;
        WorkerMessage msg = next_message(&r, setup_.options.step_timeout_s, what, waiting);
        if (!msg.has_eval()) throw WorkerLost{r, std::string("sent ") + message_kind(msg) + " " + what};
        const threadsplit::EvalResult& res = msg.eval();
        if (res.round() < round && res.run_id() == setup_.run_id) continue;  // of an abandoned round
        const int expect = int(shares[size_t(live_index_[size_t(r)])].size());
        // Run id, loss and counts were checked as it was read (check_worker_message).
        if (res.round() != round || received[size_t(r)] || res.samples() != expect)
          throw WorkerLost{r, "sent an evaluation result that does not match round " +
                                  std::to_string(round) + " (" + std::to_string(res.samples()) + " of " +
                                  std::to_string(expect) + " samples) " + what};
        received[size_t(r)] = true;
        waiting[size_t(r)] = false;
        loss_sum += res.loss_sum();
        correct += res.correct();
        ++got;
      }
    } catch (const WorkerLost& lost) {
      lose_worker(lost.rank, lost.why);
      continue;
    }
    out.samples = int64_t(all.size());
    out.loss = loss_sum / double(out.samples);
    out.accuracy = double(correct) / double(out.samples);
    break;
  }
  out.seconds = wall.elapsed();
  progress.clear();
  return out;
}

void TrainingRun::shutdown(bool failed, const std::string& reason) {
  const int P = setup_.world_size;
  std::vector<bool> done(static_cast<size_t>(P), true);
  int waiting = 0;
  for (int r : live_ranks()) {
    auto link = service_.link(r);
    CoordinatorMessage m;
    m.mutable_shutdown()->set_run_id(setup_.run_id);
    m.mutable_shutdown()->set_reason(reason);
    m.mutable_shutdown()->set_failed(failed);
    if (link && link->send(m)) {
      done[size_t(r)] = false;
      ++waiting;
    }
  }
  const double until = now_seconds() + 10;
  while (waiting > 0 && now_seconds() < until) {
    auto e = service_.events().pop(until - now_seconds());
    if (!e) break;
    if (e->rank < 0 || e->rank >= P || done[size_t(e->rank)]) continue;
    if (e->closed) {
      done[size_t(e->rank)] = true;
      --waiting;
    } else if (e->message.has_goodbye()) {
      workers_[size_t(e->rank)].goodbye = e->message.goodbye();
      done[size_t(e->rank)] = true;
      --waiting;
    }
    // Anything else (a step result of an aborted step) is dropped.
  }
}

}  // namespace ts
