// The collective: what the coordinator sends to every live worker and collects back from
// each, for training steps, evaluation rounds and shutdown alike, with one gather().
//
// A gather collects exactly one message of a kind from every live rank. It drops what is
// stale (a result computed under a deal that rank really was dealt and that was since
// replaced, an evaluation round it really was asked for and that was since abandoned),
// refuses what is wrong for the round (a deal or round the rank never had is a protocol
// violation: the rank then counts as lost, named), notices
// ranks that died, stopped or stayed silent past the deadline, which runs from the start of
// the gather, and hands every loss to Membership's policy. Training steps are dealt a whole
// epoch ahead (each worker's loader works ahead); when a rank is lost mid-epoch, the rest of
// the epoch is re-dealt among the survivors and the step gathered again: each step keeps its
// global batch, so the math is unchanged (up to float summation order).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "epoch_plan.h"
#include "gradient_reducer.h"
#include "membership.h"
#include "shared_plane.h"
#include "step_deadline.h"
#include "trainer.pb.h"
#include "worker_events.h"

namespace ts {

enum class GatherKind { kStep, kEval, kGoodbye };

class Collective {
 public:
  Collective(Membership& members, WorkerTransport& transport, std::string run_id,
             const StepDeadline& deadline, double failure_grace_s);

  // Deals steps [first, last) of `plan` (epoch `epoch`, the first being global step
  // `first_step`) among the live ranks, and keeps the plan for re-deals. A rank that cannot
  // be reached is lost, and the next gather_step re-deals.
  void deal_epoch(EpochPlan plan, int64_t epoch, int first, int last, int64_t first_step);
  // The epoch dealt last, and the end of the steps of it that were dealt.
  const EpochPlan& plan() const { return plan_; }
  int dealt_end() const { return last_; }

  // Every live rank's StepResult for global step `step`, which is step `s` of the dealt
  // epoch, by rank (moved out: the gradient bytes are not copied); `arrived_s[r]` is when
  // rank r's reached its handler. Re-deals and gathers again when a rank is lost.
  std::vector<threadsplit::WorkerMessage>& gather_step(int64_t step, int s, std::vector<double>* arrived_s);

  // Sends one evaluation round over `indices` (split among the live ranks) and gathers its
  // results, by rank (valid until the next gather). Null when a rank was lost: the caller
  // starts a new round. `tta_level`: the workers' test-time augmentation (EvalRequest).
  const std::vector<threadsplit::WorkerMessage>* eval_round(const std::string& split,
                                                            const std::vector<int32_t>& indices,
                                                            int batch, double deadline_s,
                                                            int tta_level = 0);

  // --max-grad-norm: a rank's share-gradient of a larger L2 norm is refused as an outlier
  // (the rank is lost, policy applies). 0: no bound.
  void set_max_grad_norm(double bound) { max_grad_norm_ = bound; }

  // --bucket-kb: step gathers take each rank's GradientBuckets as they come and add them to
  // `reducer` (its plan set), so that when gather_step returns the sum is done. Null, or a
  // reducer without a plan: whole gradients in the StepResults, summed by the caller.
  void set_bucket_reducer(GradientReducer* reducer) { reducer_ = reducer; }
  // --data-plane shm: a StepResult's gradient is in its rank's slot of `plane`, which the
  // gather checks (finite; --max-grad-norm) once the result is in.
  void set_shared_plane(const SharedPlane* plane) { plane_ = plane; }

  // The same message to every live rank; a rank that cannot be reached is lost (policy
  // applies) and the rest of the epoch will be re-dealt.
  void broadcast(std::shared_ptr<const threadsplit::CoordinatorMessage> m, const std::string& during);

  // Rank r came back as a new process (Membership::readmit, --respawn): it is held to what
  // it is sent from now on (the deals and rounds of the process it replaces are not its), and
  // the next gather re-deals the rest of the epoch among the live ranks including it.
  void readmitted(int r) {
    dealt_[size_t(r)].clear();
    asked_[size_t(r)].clear();
    redeal_due_ = true;
  }

  // Shutdown to every live rank, then their Goodbyes (into Membership's records), for at most
  // `timeout_s`. A stream that ends instead counts as done; nothing is lost here.
  void shutdown(bool failed, const std::string& reason, double timeout_s);

 private:
  // One message of `kind` from every live rank, into results_ by rank. `round` is the step or
  // evaluation round; `expect[r]` the samples rank r must report. False when a rank was lost.
  bool gather(GatherKind kind, int64_t round, const std::vector<int>& expect,
              const std::string& what, double deadline_s, std::vector<double>* arrived_s);
  // Throws WorkerLost for the first rank still awaited at the deadline.
  [[noreturn]] void lose_silent(const std::vector<bool>& waiting, const std::string& what, double deadline_s);
  // Deals steps [s, last_) of the epoch under a new deal id; `initial`: the epoch's first.
  void deal(int s, bool initial);
  // Whether rank r was really sent deal `id` / evaluation round `round`.
  bool was_dealt(int r, uint32_t id) const;
  bool was_asked(int r, int64_t round) const;
  // The deal ids rank r was sent, "1, 2".
  std::string deals_of(int r) const;

  Membership& members_;
  WorkerTransport& transport_;
  const std::string run_id_;
  const StepDeadline& deadline_;
  const double grace_s_;
  std::vector<threadsplit::WorkerMessage> results_;   // by rank, reused

  // The dealt epoch.
  EpochPlan plan_;
  int64_t epoch_ = 0, step_of_s0_ = 0;  // global step of the plan's step 0
  int last_ = 0;
  uint32_t deal_id_ = 0;
  bool redeal_due_ = false;             // a rank was lost since the epoch was last dealt
  int64_t eval_round_ = 0;
  // By rank: the deal ids and evaluation rounds it was really sent (a few per run).
  std::vector<std::vector<uint32_t>> dealt_;
  std::vector<std::vector<int64_t>> asked_;
  double max_grad_norm_ = 0;
  GradientReducer* reducer_ = nullptr;
  const SharedPlane* plane_ = nullptr;
  std::vector<double> bucket_norm2_;    // by rank: this step's buckets' squared L2 norm
};

}  // namespace ts
