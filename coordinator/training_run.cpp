#include "training_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "epoch_plan.h"
#include "timing.h"
#include "trainer_service.h"
#include "wire_format.h"
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
      grads_(size_t(setup.world_size), std::vector<float>(setup.net.num_params)),
      sum_(setup.net.num_params) {
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

void TrainingRun::send(int rank, const CoordinatorMessage& m) {
  auto link = service_.link(rank);
  if (!link || !link->send(m))
    throw RunAborted(describe_worker(rank) + " can no longer be reached");
}

void TrainingRun::send_all(const CoordinatorMessage& m) {
  for (int r = 0; r < setup_.world_size; ++r) send(r, m);
}

WorkerMessage TrainingRun::next_message(int* rank, double timeout_s, const std::string& what) {
  auto e = service_.events().pop(timeout_s);
  if (!e)
    throw RunAborted("no worker answered " + what + " within " +
                     std::to_string(int(timeout_s)) + " s (--step-timeout)");
  *rank = e->rank;
  if (e->closed) throw RunAborted(describe_worker(e->rank) + " left " + what + ": " + e->why);
  return std::move(e->message);
}

void TrainingRun::run_epoch(ProgressDisplay& progress) {
  const RunOptions& o = setup_.options;
  const int P = setup_.world_size;
  const EpochPlan plan = plan_epoch(o.seed, epoch_, setup_.split.train_begin,
                                    setup_.split.train_end, o.shuffle, setup_.global_batch);
  const int first = int(step_in_epoch_);
  int last = plan.steps();
  if (o.steps > 0) last = int(std::min<int64_t>(last, first + (o.steps - steps_this_run_)));

  // Deal: every worker gets its share of every step of this epoch (that will run) up front,
  // so its loader can work ahead.
  for (int r = 0; r < P; ++r) {
    CoordinatorMessage m;
    threadsplit::EpochDeal* deal = m.mutable_deal();
    deal->set_run_id(setup_.run_id);
    deal->set_epoch(epoch_);
    deal->set_first_step(step_);
    for (int s = first; s < last; ++s) {
      threadsplit::StepShare* share = deal->add_steps();
      const std::vector<int32_t> idx = plan.share(s, r, P);
      share->mutable_indices()->Add(idx.begin(), idx.end());
      share->set_global_batch(int(plan.batches[size_t(s)].size()));
    }
    send(r, m);
  }

  EpochRecord rec;
  rec.epoch = epoch_ + 1;
  rec.planned_steps = plan.steps();
  rec.workers.resize(size_t(P));
  double loss_sum = 0;
  int64_t correct = 0;
  std::vector<bool> received(static_cast<size_t>(P));
  std::vector<bool> empty(static_cast<size_t>(P));
  std::string packed;
  const Stopwatch wall;
  for (int s = first; s < last; ++s) {
    const std::vector<int32_t>& batch = plan.batches[size_t(s)];
    const std::string what = "step " + std::to_string(step_);
    std::fill(received.begin(), received.end(), false);
    const double loss_before = loss_sum;
    const Stopwatch wait;
    StepTiming timing;
    timing.step = step_;
    timing.start_s = now_seconds();
    timing.workers.resize(size_t(P));
    for (int got = 0; got < P; ++got) {
      int r = -1;
      WorkerMessage msg = next_message(&r, o.step_timeout_s, "during " + what);
      if (!msg.has_step())
        throw RunAborted(describe_worker(r) + " sent " + message_kind(msg) + " during " + what);
      const threadsplit::StepResult& res = msg.step();
      const int expect = worker_share(int(batch.size()), P, r).count;
      std::string bad;
      if (res.run_id() != setup_.run_id) bad = "a message of run '" + res.run_id() + "'";
      else if (res.step() != step_) bad = "a result for step " + std::to_string(res.step());
      else if (received[size_t(r)]) bad = "a second result";
      else if (res.samples() != expect)
        bad = "a result for " + std::to_string(res.samples()) + " samples instead of " + std::to_string(expect);
      else if (!std::isfinite(res.loss_sum()) || res.correct() < 0 || res.correct() > expect)
        bad = "an impossible loss or accuracy (loss sum " + std::to_string(res.loss_sum()) + ")";
      if (bad.empty()) {
        empty[size_t(r)] = expect == 0 && res.gradient().empty();
        if (!empty[size_t(r)])
          bad = unpack_floats(res.gradient(), setup_.net.num_params, grads_[size_t(r)].data(), "its gradient");
      }
      if (!bad.empty()) throw RunAborted(describe_worker(r) + " sent " + bad + " during " + what);
      received[size_t(r)] = true;
      rec.workers[size_t(r)].add(res.times());
      timing.workers[size_t(r)].received_s = now_seconds();
      note_result(timing.workers[size_t(r)], res);
      workers_[size_t(r)].total.add(res.times());
      loss_sum += res.loss_sum();
      correct += res.correct();
    }
    rec.gradient_wait_s += wait.elapsed();

    timing.gradients_s = now_seconds();
    const Stopwatch update;
    // Rank order, always: the sum (and so the run) is the same on every repetition.
    std::fill(sum_.begin(), sum_.end(), 0.f);
    for (int r = 0; r < P; ++r) {
      if (empty[size_t(r)]) continue;
      const float* g = grads_[size_t(r)].data();
      float* acc = sum_.data();
      for (size_t i = 0; i < sum_.size(); ++i) acc[i] += g[i];
    }
    optimizer_->step(params_.data(), sum_.data());
    CoordinatorMessage m;
    threadsplit::Params* p = m.mutable_params();
    p->set_run_id(setup_.run_id);
    p->set_step(step_);
    pack_floats(params_.data(), params_.size(), p->mutable_params());
    rec.update_s += update.elapsed();
    timing.updated_s = now_seconds();
    send_all(m);

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
  }
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
      rec.exchange_share += std::max(0.0, w.exchange_wait - rec.update_s) / rec.seconds / P;
    }
    rec.update_share = rec.update_s / rec.seconds;
  }
  if (step_in_epoch_ == plan.steps()) {
    ++epoch_;
    step_in_epoch_ = 0;
  }
  epochs_.push_back(std::move(rec));
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
                       " | data %.0f%% fwd %.0f%% bwd %.0f%% exchange %.0f%% update %.0f%%",
                       100 * rec.data_share, 100 * rec.forward_share, 100 * rec.backward_share,
                       100 * rec.exchange_share, 100 * rec.update_share);
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
  const int64_t round = eval_round_++;
  const auto shares = split_among_workers(all, P);
  for (int r = 0; r < P; ++r) {
    CoordinatorMessage m;
    threadsplit::EvalRequest* q = m.mutable_eval();
    q->set_run_id(setup_.run_id);
    q->set_round(round);
    q->set_split(split);
    q->mutable_indices()->Add(shares[size_t(r)].begin(), shares[size_t(r)].end());
    q->set_batch(setup_.options.eval_batch);
    send(r, m);
  }
  const Stopwatch wall;
  double loss_sum = 0;
  int64_t correct = 0;
  std::vector<bool> received(static_cast<size_t>(P));
  const std::string what = "during " + split + " evaluation";
  for (int got = 0; got < P; ++got) {
    int r = -1;
    WorkerMessage msg = next_message(&r, setup_.options.step_timeout_s, what);
    if (!msg.has_eval()) throw RunAborted(describe_worker(r) + " sent " + message_kind(msg) + " " + what);
    const threadsplit::EvalResult& res = msg.eval();
    const int expect = int(shares[size_t(r)].size());
    if (res.run_id() != setup_.run_id || res.round() != round || received[size_t(r)] ||
        res.samples() != expect || !std::isfinite(res.loss_sum()) || res.correct() < 0 ||
        res.correct() > expect)
      throw RunAborted(describe_worker(r) + " sent an evaluation result that does not match round " +
                       std::to_string(round) + " (" + std::to_string(res.samples()) + " of " +
                       std::to_string(expect) + " samples) " + what);
    received[size_t(r)] = true;
    loss_sum += res.loss_sum();
    correct += res.correct();
  }
  out.samples = int64_t(all.size());
  out.loss = loss_sum / double(out.samples);
  out.accuracy = double(correct) / double(out.samples);
  out.seconds = wall.elapsed();
  progress.clear();
  return out;
}

void TrainingRun::shutdown(bool failed, const std::string& reason) {
  const int P = setup_.world_size;
  std::vector<bool> done(static_cast<size_t>(P), true);
  int waiting = 0;
  for (int r = 0; r < P; ++r) {
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
