#include "collective.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "float_packing.h"
#include "timing.h"

namespace ts {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

namespace {

const char* message_kind(const WorkerMessage& m) {
  switch (m.body_case()) {
    case WorkerMessage::kHello: return "Hello";
    case WorkerMessage::kStep: return "StepResult";
    case WorkerMessage::kEval: return "EvalResult";
    case WorkerMessage::kGoodbye: return "Goodbye";
    case WorkerMessage::kBucket: return "GradientBucket";
    default: return "an empty message";
  }
}

WorkerMessage::BodyCase body_of(GatherKind kind) {
  switch (kind) {
    case GatherKind::kStep: return WorkerMessage::kStep;
    case GatherKind::kEval: return WorkerMessage::kEval;
    case GatherKind::kGoodbye: break;
  }
  return WorkerMessage::kGoodbye;
}

// The L2 norm of a packed gradient, summed in double (a finite float squared may overflow
// float).
double squared_norm(const std::string& bytes) {
  const size_t n = bytes.size() / sizeof(float);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    float x;
    std::memcpy(&x, bytes.data() + i * sizeof(float), sizeof x);
    sum += double(x) * double(x);
  }
  return sum;
}

double slot_squared_norm(const SharedPlane& plane, int r) {
  acquire_from_peer();
  const float* g = plane.slot(r);
  double sum = 0;
  for (size_t i = 0; i < plane.num_params(); ++i) sum += double(g[i]) * double(g[i]);
  return sum;
}

// The step gate is open (0) whenever no step gather runs, whatever way that gather ends.
struct StepGate {
  EventQueue& events;
  ~StepGate() { events.set_step_gate(0); }
};

}  // namespace

Collective::Collective(Membership& members, WorkerTransport& transport, std::string run_id,
                       const StepDeadline& deadline, double failure_grace_s)
    : members_(members),
      transport_(transport),
      run_id_(std::move(run_id)),
      deadline_(deadline),
      grace_s_(failure_grace_s),
      results_(size_t(members.world_size())),
      dealt_(size_t(members.world_size())),
      asked_(size_t(members.world_size())) {}

bool Collective::was_dealt(int r, uint32_t id) const {
  const auto& d = dealt_[size_t(r)];
  return std::find(d.begin(), d.end(), id) != d.end();
}

bool Collective::was_asked(int r, int64_t round) const {
  const auto& a = asked_[size_t(r)];
  return std::find(a.begin(), a.end(), round) != a.end();
}

std::string Collective::deals_of(int r) const {
  std::string s;
  for (uint32_t id : dealt_[size_t(r)]) s += (s.empty() ? "" : ", ") + std::to_string(id);
  return s.empty() ? "none" : s;
}

void Collective::deal_epoch(EpochPlan plan, int64_t epoch, int first, int last,
                            int64_t first_step) {
  plan_ = std::move(plan);
  epoch_ = epoch;
  last_ = last;
  step_of_s0_ = first_step - first;
  deal(first, /*initial=*/true);  // a rank lost meanwhile leaves redeal_due_ set
}

void Collective::deal(int s, bool initial) {
  // Every live worker gets its share of every step of the epoch (that will run) up front,
  // so its loader can work ahead.
  ++deal_id_;
  const std::vector<int> live = members_.live_ranks();
  const int n = int(live.size());
  for (int r : live) {
    auto m = std::make_shared<CoordinatorMessage>();
    threadsplit::EpochDeal* d = m->mutable_deal();
    d->set_run_id(run_id_);
    d->set_epoch(epoch_);
    d->set_first_step(step_of_s0_ + s);
    d->set_deal_id(deal_id_);
    for (int k = s; k < last_; ++k) {
      threadsplit::StepShare* share = d->add_steps();
      const std::vector<int32_t> idx = plan_.share(k, members_.live_index(r), n);
      share->mutable_indices()->Add(idx.begin(), idx.end());
      share->set_global_batch(int(plan_.batches[size_t(k)].size()));
    }
    if (transport_.send(r, std::move(m))) {
      dealt_[size_t(r)].push_back(deal_id_);
    } else {
      redeal_due_ = true;  // the survivors are dealt again before the next gather
      members_.lose(r, "can no longer be reached" +
                           (initial ? " (epoch " + std::to_string(epoch_ + 1) + " deal)" : std::string()));
      return;
    }
  }
  if (!initial)
    std::fprintf(stderr, "threadsplit: re-dealt steps %lld..%lld of epoch %lld among %d "
                 "workers; each step keeps its global batch of %zu, so the math is "
                 "unchanged (up to float summation order)\n",
                 (long long)(step_of_s0_ + s), (long long)(step_of_s0_ + last_ - 1),
                 (long long)epoch_ + 1, n, plan_.batches[size_t(s)].size());
  redeal_due_ = false;
}

std::vector<WorkerMessage>& Collective::gather_step(int64_t step, int s, std::vector<double>* arrived_s) {
  const std::string what = "during step " + std::to_string(step);
  assert(step == step_of_s0_ + s && "the schedule and the deal count steps alike");
  const int batch = int(plan_.batches[size_t(s)].size());
  std::vector<int> expect(size_t(members_.world_size()), 0);
  while (true) {  // until every live rank's result for this step is in
    if (redeal_due_) {
      deal(s, /*initial=*/false);
      if (redeal_due_) continue;
    }
    for (int r : members_.live_ranks())
      expect[size_t(r)] = worker_share(batch, members_.live_count(), members_.live_index(r), plan_.granule).count;
    if (gather(GatherKind::kStep, step, expect, what, deadline_.seconds(), arrived_s)) return results_;
    redeal_due_ = true;
  }
}

const std::vector<WorkerMessage>* Collective::eval_round(const std::string& split,
                                                        const std::vector<int32_t>& indices,
                                                        int batch, double deadline_s,
                                                        int tta_level) {
  const int64_t round = eval_round_++;
  const std::string what = "during " + split + " evaluation";
  const std::vector<int> live = members_.live_ranks();
  const auto shares = split_among_workers(indices, int(live.size()));
  std::vector<int> expect(size_t(members_.world_size()), 0);
  for (int r : live) {
    const auto& share = shares[size_t(members_.live_index(r))];
    expect[size_t(r)] = int(share.size());
    auto m = std::make_shared<CoordinatorMessage>();
    threadsplit::EvalRequest* q = m->mutable_eval();
    q->set_run_id(run_id_);
    q->set_round(round);
    q->set_split(split);
    q->mutable_indices()->Add(share.begin(), share.end());
    q->set_batch(batch);
    q->set_tta_level(tta_level);
    if (!transport_.send(r, std::move(m))) {
      members_.lose(r, "can no longer be reached");
      return nullptr;
    }
    asked_[size_t(r)].push_back(round);
  }
  if (!gather(GatherKind::kEval, round, expect, what, deadline_s, nullptr)) return nullptr;
  return &results_;
}

void Collective::broadcast(std::shared_ptr<const CoordinatorMessage> m, const std::string& during) {
  for (int r : members_.live_ranks())
    if (!transport_.send(r, m)) {
      members_.lose(r, "can no longer be reached " + during);
      redeal_due_ = true;
    }
}

void Collective::shutdown(bool failed, const std::string& reason, double timeout_s) {
  auto m = std::make_shared<CoordinatorMessage>();
  m->mutable_shutdown()->set_run_id(run_id_);
  m->mutable_shutdown()->set_reason(reason);
  m->mutable_shutdown()->set_failed(failed);
  std::vector<int> expect(size_t(members_.world_size()), -1);  // -1: not waited for
  for (int r : members_.live_ranks())
    if (transport_.send(r, m)) expect[size_t(r)] = 0;
  gather(GatherKind::kGoodbye, 0, expect, "at shutdown", timeout_s, nullptr);
}

void Collective::lose_silent(const std::vector<bool>& waiting, const std::string& what, double deadline_s) {
  for (int r : members_.live_ranks())
    if (waiting[size_t(r)]) {
      // Say why where we can see it: a stopped process, not a slow one.
      if (members_.stopped_now(r))
        throw WorkerLost{r, "was stopped (SIGSTOP or a debugger) and did not answer " + what +
                                " within " + std::to_string(int(deadline_s)) + " s"};
      char why[256];
      std::snprintf(why, sizeof why,
                    "did not answer %s within %.1f s (slowest recent step %.2f s + --failure-grace %.1f s)",
                    what.c_str(), deadline_s, deadline_.slowest_recent(), grace_s_);
      throw WorkerLost{r, why};
    }
  throw RunAborted("no worker answered " + what + " within " + std::to_string(int(deadline_s)) + " s");
}

bool Collective::gather(GatherKind kind, int64_t round, const std::vector<int>& expect,
                        const std::string& what, double deadline_s, std::vector<double>* arrived_s) {
  const int P = members_.world_size();
  const bool goodbyes = kind == GatherKind::kGoodbye;
  std::vector<bool> waiting(size_t(P), false);
  int missing = 0;
  for (int r : members_.live_ranks())
    if (expect[size_t(r)] >= 0) {
      waiting[size_t(r)] = true;
      ++missing;
    }
  // Buckets: this attempt's sum starts from nothing (a re-deal gathers again from zero).
  const bool bucketed = kind == GatherKind::kStep && reducer_ && reducer_->bucketed();
  if (bucketed) {
    std::vector<int> senders;
    for (int r : members_.live_ranks())
      if (expect[size_t(r)] > 0) senders.push_back(r);
    reducer_->begin(senders, P);
    bucket_norm2_.assign(size_t(P), 0.0);
  }
  EventQueue& events = transport_.events();
  StepGate gate{events};
  const double start = now_seconds();
  double polled = start;
  bool drained = false;  // past the deadline, everything queued by then was looked at
  try {
    while (missing > 0) {
      const double now = now_seconds();
      const double left = start + deadline_s - now;
      if (goodbyes && left <= 0) return false;  // bounded: whoever is silent is stopped later
      // A worker that exited or sits stopped is named as such, before any deadline.
      if (!goodbyes && now - polled >= 0.1) {
        polled = now;
        if (auto lost = members_.poll_processes(what)) throw *lost;
      }
      // The deadline is checked on every turn, not only when nothing came, so a worker that
      // keeps sending stale or foreign messages does not hold the gather open; past it, what
      // already arrived is read first (pop(0) reads nothing new), then the silent are lost.
      const bool overdue = !goodbyes && left < 0;
      if (overdue && drained) lose_silent(waiting, what, deadline_s);
      if (kind == GatherKind::kStep) events.set_step_gate(overdue ? 0 : missing);
      auto e = events.pop(goodbyes ? left : overdue ? 0.0 : std::min(0.1, left + 0.001));
      if (!e) {
        drained = overdue;
        continue;
      }
      const int r = e->rank;
      if (r < 0 || r >= P || !members_.alive(r)) continue;  // no longer in the run
      if (goodbyes) {
        if (!waiting[size_t(r)]) continue;
        if (e->closed || e->message.has_goodbye()) {
          if (!e->closed) members_.workers()[size_t(r)].goodbye = e->message.goodbye();
          waiting[size_t(r)] = false;
          --missing;
        }
        continue;  // anything else (a step result of an aborted step) is dropped
      }
      if (e->closed && e->fatal) {
        // A non-finite loss or gradient is the run's divergence, not the wire's fault
        // (docs/reliability.md: one worker's alone is still taken as divergence).
        const std::string which = e->why.find("non-finite loss") != std::string::npos ? "loss" : "gradient";
        const std::string at = kind == GatherKind::kStep ? "at step " + std::to_string(round) : what;
        members_.fail_run(r, "the run diverged " + at + " (a worker's " + which + "): ",
                          e->why + " " + what +
                              "; stopped before the parameters were touched, the last good state is "
                              "checkpointed (lower --lr, or resume from the last checkpoint)");
      }
      if (e->closed) throw WorkerLost{r, "left " + what + ": " + e->why};
      WorkerMessage& msg = e->message;
      if (kind == GatherKind::kStep && msg.has_bucket()) {
        const threadsplit::GradientBucket& b = msg.bucket();
        const bool had_deal = was_dealt(r, b.deal_id());
        if (had_deal && b.deal_id() != deal_id_ && b.step() == round) continue;  // stale, as results
        std::string bad;
        if (!bucketed) bad = "a gradient bucket, which this run did not ask for (--bucket-kb 0)";
        else if (!had_deal)
          bad = "a gradient bucket for deal " + std::to_string(b.deal_id()) + ", a deal it was never "
                "dealt (its deals: " + deals_of(r) + "): a protocol violation";
        else if (b.deal_id() != deal_id_) bad = "a gradient bucket for deal " + std::to_string(b.deal_id());
        else if (b.step() != round) bad = "a gradient bucket for step " + std::to_string(b.step());
        else if (!waiting[size_t(r)]) bad = "a gradient bucket after its step result";
        if (bad.empty()) {
          if (max_grad_norm_ > 0) bucket_norm2_[size_t(r)] += squared_norm(b.gradient());
          bad = reducer_->add(r, b.bucket(), msg.mutable_bucket()->mutable_gradient());
        }
        if (!bad.empty()) {
          std::fprintf(stderr, "threadsplit: refused from %s: %s %s\n", members_.describe(r).c_str(),
                       bad.c_str(), what.c_str());
          throw WorkerLost{r, "sent " + bad + " " + what};
        }
        continue;
      }
      if (msg.body_case() != body_of(kind))
        throw WorkerLost{r, std::string("sent ") + message_kind(msg) + " " + what};
      if (kind == GatherKind::kStep) {
        const threadsplit::StepResult& res = msg.step();
        const bool had_deal = was_dealt(r, res.deal_id());
        // A result computed under an earlier deal this rank really had, before the latest
        // re-deal, is stale, not wrong: dropped, and the deadline (from the start of the
        // gather) is not moved by it.
        if (had_deal && res.deal_id() != deal_id_ && res.step() == round) continue;
        // The run id, the loss, the accuracy counts, the gradient's size and its values were
        // checked as the message was read (check_worker_message); what is left needs state.
        std::string bad;
        if (!had_deal)
          bad = "a result for deal " + std::to_string(res.deal_id()) + " (step " +
                std::to_string(res.step()) + "), a deal it was never dealt (its deals: " +
                deals_of(r) + "): a protocol violation";
        else if (res.deal_id() != deal_id_) bad = "a result for deal " + std::to_string(res.deal_id());
        else if (res.step() != round) bad = "a result for step " + std::to_string(res.step());
        else if (!waiting[size_t(r)]) bad = "a second result";
        else if (res.samples() != expect[size_t(r)])
          bad = "a result for " + std::to_string(res.samples()) + " samples instead of " +
                std::to_string(expect[size_t(r)]);
        else if (bucketed && res.samples() > 0 &&
                 (res.buckets() != int(reducer_->buckets().size()) ||
                  reducer_->received(r) != int(reducer_->buckets().size())))
          bad = "a result announcing " + std::to_string(res.buckets()) + " gradient buckets after " +
                std::to_string(reducer_->received(r)) + " of the plan's " +
                std::to_string(reducer_->buckets().size());
        else if (!bucketed && res.buckets() != 0)
          bad = "a result whose gradient came in buckets, which this run did not ask for";
        else if (res.samples() > 0 && res.in_shared_memory() != (plane_ != nullptr))
          bad = plane_ ? "a result with its gradient in the message, where this run's gradients go through "
                         "the shared-memory data plane"
                       : "a result with its gradient in shared memory, which this run did not set up";
        else if (max_grad_norm_ > 0) {
          const double norm = std::sqrt(bucketed ? bucket_norm2_[size_t(r)]
                                        : res.in_shared_memory() ? slot_squared_norm(*plane_, r)
                                                                 : squared_norm(res.gradient()));
          if (norm > max_grad_norm_) {
            char b[200];
            std::snprintf(b, sizeof b, "a gradient of L2 norm %.6g for step %lld, above --max-grad-norm %.6g "
                          "(refused as an outlier)", norm, (long long)round, max_grad_norm_);
            bad = b;
          }
        }
        if (!bad.empty()) {
          std::fprintf(stderr, "threadsplit: refused from %s: %s %s\n", members_.describe(r).c_str(),
                       bad.c_str(), what.c_str());
          throw WorkerLost{r, "sent " + bad + " " + what};
        }
        // The shared-memory gradient gets the check the wire gives a message's: a non-finite
        // one is the run's divergence.
        if (res.in_shared_memory() && res.samples() > 0) {
          acquire_from_peer();
          const float* g = plane_->slot(r);
          const size_t n = plane_->num_params();
          const size_t at = first_nonfinite(reinterpret_cast<const char*>(g), n);
          if (at < n)
            members_.fail_run(r, "the run diverged at step " + std::to_string(round) + " (a worker's gradient): ",
                              "a non-finite gradient (" + std::to_string(g[at]) + " at index " + std::to_string(at) +
                                  ", in shared memory) " + what +
                                  "; stopped before the parameters were touched, the last good state is "
                                  "checkpointed (lower --lr, or resume from the last checkpoint)");
        }
        if (arrived_s) (*arrived_s)[size_t(r)] = e->arrived_s;
      } else {
        const threadsplit::EvalResult& res = msg.eval();
        const bool asked = was_asked(r, res.round());
        if (asked && res.round() < round) continue;  // of an abandoned round it was asked for
        if (!asked) {
          const std::string bad = "an evaluation result for round " + std::to_string(res.round()) +
                                  ", a round it was never asked for: a protocol violation";
          std::fprintf(stderr, "threadsplit: refused from %s: %s %s\n", members_.describe(r).c_str(),
                       bad.c_str(), what.c_str());
          throw WorkerLost{r, "sent " + bad + " " + what};
        }
        // Run id, loss and counts were checked as it was read (check_worker_message).
        if (res.round() != round || !waiting[size_t(r)] || res.samples() != expect[size_t(r)])
          throw WorkerLost{r, "sent an evaluation result that does not match round " +
                                  std::to_string(round) + " (" + std::to_string(res.samples()) + " of " +
                                  std::to_string(expect[size_t(r)]) + " samples) " + what};
      }
      results_[size_t(r)].Swap(&msg);  // the gradient's bytes move, not copied
      waiting[size_t(r)] = false;
      --missing;
    }
  } catch (const WorkerLost& lost) {
    members_.lose(lost.rank, lost.why);
    return false;
  }
  // Every rank's result came after all of its buckets (checked above), so all are summed.
  if (bucketed && !reducer_->complete())
    throw RunAborted("internal error: step " + std::to_string(round) + "'s bucketed sum is incomplete");
  return true;
}

}  // namespace ts
