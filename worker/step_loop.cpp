#include "step_loop.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <omp.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "augment.h"
#include "tta.h"
#include "batch_loader.h"
#include "binding.h"
#include "cifar10.h"
#include "coordinator_link.h"
#include "exchange_only.h"
#include "float_packing.h"
#include "gradient_buckets.h"
#include "grpc_settings.h"
#include "shared_plane.h"
#include "inter_op_teams.h"
#include "model.h"
#include "model_source.h"
#include "network.h"
#include "process_facts.h"
#include "timing.h"
#include "wire_checks.h"
#include "worker_exit.h"

namespace ts {

namespace {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

// What answers a step's gradient: the step's parameters; or a new deal (another worker was
// lost and the rest of the epoch is re-dealt, from the step just computed on); or Shutdown
// (the run ends early).
using ParamsReply = std::variant<threadsplit::Params, threadsplit::EpochDeal, threadsplit::Shutdown>;

// How running a deal ended: every step done, re-dealt, or shut down.
struct DealDone {};
using DealEnd = std::variant<DealDone, threadsplit::EpochDeal, threadsplit::Shutdown>;

// One step's numbers for its StepResult; all zero for a share of no samples.
struct StepNumbers {
  int samples = 0;
  double data_wait_s = 0;
  StepStats model;  // loss sum, correct count, forward and backward seconds
};

WorkerMessage hello_message(const WorkerConfig& config, const threadsplit::Binding& binding,
                            const std::string& data_fingerprint) {
  WorkerMessage hello;
  threadsplit::Hello* h = hello.mutable_hello();
  h->set_protocol_version(kProtocolVersion);
  h->set_run_token(config.token);
  h->set_rank(config.rank);
  h->set_run_id(config.run_id);
  h->set_data_fingerprint(data_fingerprint);
  *h->mutable_binding() = binding;
  *h->mutable_versions() = library_versions();
  return hello;
}

class WorkerSession {
 public:
  explicit WorkerSession(const WorkerConfig& c) : config_(c), link_(c) {}
  int run();

 private:
  void join();
  void set_up();
  void open_data(const std::string& dir);
  CoordinatorMessage receive(WorkerWaitsFor waits);
  DealEnd run_deal(const threadsplit::EpochDeal& deal);
  void queue_batches(const threadsplit::EpochDeal& deal);
  const LoadedBatch& next_batch(int n, double* wait_s);
  StepStats train_step(const LoadedBatch& batch, int global_batch);
  void fill_exchange_only_gradient(int samples, int global_batch);
  void send_gradient(uint32_t deal_id, const StepNumbers& step);
  // --bucket-kb: sends every bucket of the plan not sent yet whose floats begin at or after
  // `ready_from` (all of them with 0), in plan order; returns the seconds it took.
  double send_buckets(size_t ready_from);
  ParamsReply await_params();
  void install_params(const std::string& packed);
  void install_params(const char* bytes, size_t size);
  // Where this step's gradient is written: this rank's slot of the data plane, or grad_.
  float* grad() { return plane_.valid() ? plane_.slot(welcome_.rank()) : grad_.data(); }
  void restart_loader();
  void run_eval(const threadsplit::EvalRequest& req);
  int shutdown(const threadsplit::Shutdown& s);

  const WorkerConfig& config_;
  CoordinatorLink link_;  // first in, last out: the loader and model go before the stream

  threadsplit::Welcome welcome_;
  WorkerWireLimits limits_;  // what the coordinator's messages are held to
  NetworkSpec net_;
  std::optional<Cifar10> data_;
  // --inter-op: the teams, and one Model per lane, each built and run inside its lane
  // (inter_op_teams.h); model_ is lane 0's (evaluation runs there).
  std::unique_ptr<InterOpTeams> teams_;
  CoreSet worker_cores_;     // every lane's cores (empty with one lane)
  std::vector<std::unique_ptr<Model>> lane_models_;
  std::vector<std::vector<float>> lane_grads_;  // lanes 1..I-1 (lane 0 writes grad_)
  Model* model_ = nullptr;
  std::unique_ptr<BatchLoader> loader_;
  LoaderOptions loader_options_;
  LoadedBatch batch_;        // its buffers are swapped with the loader's, step after step
  std::vector<float> grad_;
  SharedPlane plane_;        // Welcome.shared_memory: the coordinator's segment (shared_plane.h)
  std::vector<GradientBucket> buckets_;  // the plan (Welcome.bucket_bytes); empty: whole gradients
  size_t next_bucket_ = 0;               // this step's first bucket not sent yet
  uint32_t deal_id_ = 0;                 // of the step being computed (its buckets carry it)
  // --exchange-only: no model; the parameters that come back are copied here instead of into
  // the primitives' buffer (the same one copy).
  std::vector<float> params_;
  int64_t step_ = 0;         // the next global step expected
  // Exchange wait and parameter install of a step are only known after its result was sent;
  // they travel with the next result.
  double pending_exchange_s_ = 0, pending_apply_s_ = 0;
};

// The next message, checked (common/wire_checks.h) against what this worker waits for.
CoordinatorMessage WorkerSession::receive(WorkerWaitsFor waits) {
  const char* what = waits == WorkerWaitsFor::kWelcome       ? "its Welcome"
                     : waits == WorkerWaitsFor::kInstruction ? "its next instruction"
                                                             : "the parameters of a step";
  CoordinatorMessage m = link_.read(what);
  const std::string bad = check_coordinator_message(m, limits_, waits, step_);
  if (!bad.empty()) throw WorkerExit{1, bad};
  return m;
}

// Hello -> Welcome, then everything the Welcome names is set up.
void WorkerSession::join() {
  // The inter-op teams pin themselves first (a single team is pinned by libgomp).
  if (config_.inter_op > 1) {
    worker_cores_ = CoreSet::of_this_process();
    // The placement's order (team 0's cores first) travels in OMP_PLACES; a mask has none.
    const char* places = std::getenv("OMP_PLACES");
    const CoreSet ordered = CoreSet::from_omp_places(places ? places : "");
    if (!ordered.empty() && ordered.sorted() == worker_cores_.sorted()) worker_cores_ = ordered;
    teams_ = std::make_unique<InterOpTeams>(config_.inter_op, omp_get_max_threads(), worker_cores_);
  } else {
    teams_ = std::make_unique<InterOpTeams>(1, 1, CoreSet({0}));
  }
  // Read back before anything below changes this thread's mask.
  const threadsplit::Binding binding = read_binding(teams_.get());
  // gRPC's threads and the loader's are created inside this scope, so they may use every
  // core of this worker rather than inheriting the OpenMP master's single place.
  const HelperThreadCores helpers(worker_cores_);
  // A worker given its own copy (--data) opens it first, so that the coordinator can compare
  // the copies at the door and refuse one that differs before anything is computed.
  if (!config_.data_dir.empty()) open_data(config_.data_dir);
  link_.open();
  link_.write(hello_message(config_, binding, data_ ? data_->fingerprint() : std::string()));
  CoordinatorMessage m = receive(WorkerWaitsFor::kWelcome);
  welcome_ = std::move(*m.mutable_welcome());
  link_.set_silence_timeout(welcome_.silence_timeout_s() > 0 ? welcome_.silence_timeout_s() : 660);
  set_up();
}

// The network, data, model, starting parameters and loader the Welcome names.
void WorkerSession::set_up() {
  net_ = network_for(welcome_.model(), welcome_.model_onnx());  // the Welcome's check built it once
  if (welcome_.bn_group() > 0) {
    try {
      set_bn_group(net_, welcome_.bn_group());
    } catch (const std::invalid_argument& e) {
      throw WorkerExit{1, std::string("the coordinator's Welcome: ") + e.what()};
    }
  }

  // An --exchange-only worker reads no images (no loader, no evaluation): it maps no data.
  const bool exchange_only = welcome_.exchange_only();
  if (!data_ && !exchange_only) open_data(welcome_.data_dir());
  // The coordinator's path on another host, or a copy it could not compare at the door.
  if (data_ && !welcome_.data_fingerprint().empty() && welcome_.data_fingerprint() != data_->fingerprint())
    throw WorkerExit{2, "this worker's CIFAR-10 copy " + data_->dir() + " (fingerprint " +
                            data_->fingerprint() + ") differs from the coordinator's (fingerprint " +
                            welcome_.data_fingerprint() + "): the runs would train on other data; "
                            "give this worker an identical copy (copy the coordinator's directory "
                            "or fetch it again with scripts/get_cifar10.sh) and point --data at it"};
  grad_.resize(net_.num_params);
  if (welcome_.shared_memory()) {
    if (config_.shm_fd < 0)
      throw WorkerExit{2, "the coordinator's gradients go through its shared-memory data plane, but this "
                          "worker inherited none (THREADSPLIT_SHM_FD): only the workers it spawns do; "
                          "start the coordinator with --data-plane grpc for hand-started workers"};
    try {
      plane_ = SharedPlane::open(config_.shm_fd, net_.num_params, welcome_.rank());
    } catch (const std::exception& e) {
      throw WorkerExit{2, e.what()};
    }
  }
  buckets_ = gradient_buckets(net_, size_t(std::max<int64_t>(0, welcome_.bucket_bytes())) / sizeof(float));
  if (welcome_.exchange_only()) {
    params_.resize(net_.num_params);
  } else {
    ModelOptions mo;
    mo.label_smoothing = welcome_.label_smoothing();
    mo.precision = welcome_.precision().empty() ? "f32" : welcome_.precision();
    // Each lane's Model is built inside its lane: oneDNN's library-managed scratchpad belongs
    // to the thread that creates a primitive.
    const int lanes = teams_->lanes();
    const std::vector<int> most = micro_batch_sizes(welcome_.max_local_batch(), net_.sample_granule(), lanes);
    const int lane_batch = lanes == 1 ? welcome_.max_local_batch()
                                      : std::min(welcome_.max_local_batch(),
                                                 *std::max_element(most.begin(), most.end()) + net_.sample_granule());
    lane_models_.resize(size_t(lanes));
    lane_grads_.assign(size_t(lanes), {});
    try {
      teams_->run([&](int lane) {
        lane_models_[size_t(lane)] = std::make_unique<Model>(net_, lane_batch, mo);
        if (lane > 0) lane_grads_[size_t(lane)].assign(size_t(net_.num_params), 0.f);
      });
    } catch (const std::invalid_argument& e) {
      throw WorkerExit{2, e.what()};
    }
    model_ = lane_models_[0].get();
  }
  limits_.run_id = welcome_.run_id();
  limits_.num_params = net_.num_params;
  limits_.max_local_batch = welcome_.max_local_batch();
  step_ = welcome_.step();
  // Checked only now, so a worker whose data is missing says so (exit 2) first.
  const std::string bad = check_welcome_params(welcome_, net_.num_params);
  if (!bad.empty()) throw WorkerExit{1, bad};
  install_params(welcome_.params());
  if (exchange_only) return;
  LoaderOptions lo;
  lo.augment = parse_augment(welcome_.augment());
  lo.normalize = welcome_.normalize();
  lo.seed = welcome_.seed();
  lo.threads = welcome_.loader_threads();
  lo.capacity = std::max(2, lo.threads + 1);
  loader_options_ = lo;
  loader_ = std::make_unique<BatchLoader>(*data_, lo);
}

void WorkerSession::open_data(const std::string& dir) {
  try {
    data_.emplace(Cifar10::open(dir));
  } catch (const DataError& e) {
    throw WorkerExit{2, e.what()};
  }
}

void WorkerSession::restart_loader() {
  if (!loader_) return;  // --exchange-only: none
  // Batches queued for the old deal are dropped with the old loader.
  loader_.reset();
  const HelperThreadCores helpers(worker_cores_);
  loader_ = std::make_unique<BatchLoader>(*data_, loader_options_);
}

// Every step of the deal, in order; the loader prepares their batches ahead.
DealEnd WorkerSession::run_deal(const threadsplit::EpochDeal& deal) {
  queue_batches(deal);
  for (const threadsplit::StepShare& share : deal.steps()) {
    StepNumbers step;
    step.samples = share.indices_size();
    deal_id_ = deal.deal_id();
    next_bucket_ = 0;
    if (step.samples > 0 && welcome_.exchange_only())
      fill_exchange_only_gradient(step.samples, share.global_batch());  // phase times stay 0
    else if (step.samples > 0)
      step.model = train_step(next_batch(step.samples, &step.data_wait_s), share.global_batch());
    // Buckets backward did not send (all of them with --inter-op or --exchange-only).
    if (step.samples > 0 && !buckets_.empty()) step.model.send_s += send_buckets(0);
    // The exchange, as this worker sees it: from packing its gradient to having the
    // parameters in hand (the coordinator's averaging and update included).
    const Stopwatch exchange;
    send_gradient(deal.deal_id(), step);
    ParamsReply reply = await_params();
    if (auto* redeal = std::get_if<threadsplit::EpochDeal>(&reply)) return std::move(*redeal);
    if (auto* s = std::get_if<threadsplit::Shutdown>(&reply)) return std::move(*s);
    pending_exchange_s_ = exchange.elapsed();
    const Stopwatch apply;
    const threadsplit::Params& got = std::get<threadsplit::Params>(reply);
    if (got.in_shared_memory()) {
      acquire_from_peer();
      install_params(reinterpret_cast<const char*>(plane_.params()), net_.num_params * sizeof(float));
    } else {
      install_params(got.params());
    }
    pending_apply_s_ = apply.elapsed();
    ++step_;
  }
  return DealDone{};
}

void WorkerSession::queue_batches(const threadsplit::EpochDeal& deal) {
  if (!loader_) return;  // --exchange-only: nothing to load
  for (int i = 0; i < deal.steps_size(); ++i) {
    const auto& share = deal.steps(i);
    if (share.indices_size() == 0) continue;
    LoadRequest q;
    q.indices.assign(share.indices().begin(), share.indices().end());
    q.set = Set::kTrain;
    q.epoch = deal.epoch();
    q.tag = deal.first_step() + i;
    loader_->push(std::move(q));
  }
}

// The loader's batch of n samples for step_, checked to be that step's.
const LoadedBatch& WorkerSession::next_batch(int n, double* wait_s) {
  try {
    if (!loader_->pop(batch_)) throw WorkerExit{1, "the loader closed"};
  } catch (const std::exception& e) {
    throw WorkerExit{1, std::string("loading step ") + std::to_string(step_) + ": " + e.what()};
  }
  if (batch_.tag != step_ || batch_.n != n)
    throw WorkerExit{1, "the loader returned step " + std::to_string(batch_.tag) + " for step " +
                            std::to_string(step_)};
  *wait_s = loader_->last_wait_seconds();
  return batch_;
}

// Forward and backward into grad_: the gradient of this share's part of the global batch's
// mean loss, or of its summed loss (Welcome.loss_sum: airbench's).
StepStats WorkerSession::train_step(const LoadedBatch& batch, int global_batch) {
  const float loss_scale = welcome_.loss_sum() ? 1.f : 1.f / float(global_batch);
  const int lanes = teams_->lanes();
  if (lanes == 1 && !buckets_.empty())  // each bucket goes up as soon as backward finished it
    return model_->train_step(batch.images.data(), batch.labels.data(), batch.n, loss_scale,
                              grad(), [this](size_t ready_from) { send_buckets(ready_from); });
  if (lanes == 1)
    return model_->train_step(batch.images.data(), batch.labels.data(), batch.n, loss_scale,
                              grad());
  // --inter-op: the share as I micro-batches, forward and backward at once, one per lane,
  // each writing its own gradient; then the sum in lane order, each lane adding a slice.
  const Stopwatch wall;
  const std::vector<int> counts = micro_batch_sizes(batch.n, net_.sample_granule(), lanes);
  std::vector<int> first(static_cast<size_t>(lanes), 0);
  for (int i = 1; i < lanes; ++i) first[size_t(i)] = first[size_t(i - 1)] + counts[size_t(i - 1)];
  std::vector<StepStats> stats(static_cast<size_t>(lanes));
  teams_->run([&](int lane) {
    const size_t i = size_t(lane);
    if (counts[i] == 0) return;
    float* g = lane == 0 ? grad() : lane_grads_[i].data();
    stats[i] = lane_models_[i]->train_step(batch.images.data() + size_t(first[i]) * kCifarImageBytes,
                                           batch.labels.data() + first[i], counts[i], loss_scale, g);
  });
  const size_t n = net_.num_params;
  teams_->run([&](int lane) {
    const size_t lo = n * size_t(lane) / size_t(lanes), hi = n * size_t(lane + 1) / size_t(lanes);
    float* sum = grad();
    for (int i = 1; i < lanes; ++i) {
      if (counts[size_t(i)] == 0) continue;
      const float* g = lane_grads_[size_t(i)].data();
      for (size_t k = lo; k < hi; ++k) sum[k] += g[k];
    }
  });
  StepStats out;
  for (const StepStats& s : stats) {
    out.loss_sum += s.loss_sum;
    out.correct += s.correct;
    out.forward_s = std::max(out.forward_s, s.forward_s);
  }
  // Backward: the rest of the concurrent section, the lanes' sum included.
  out.backward_s = std::max(0.0, wall.elapsed() - out.forward_s);
  return out;
}

// --exchange-only: instead of forward and backward, the share's known gradient
// (common/exchange_only.h), written into the same buffer a computed one would be.
void WorkerSession::fill_exchange_only_gradient(int samples, int global_batch) {
  const float g = exchange_only_gradient(samples, global_batch);
  float* out = grad();
  if (out[0] != g) std::fill(out, out + net_.num_params, g);  // once per share size
}

// The step's StepResult, with the gradient when it computed one and the previous step's
// exchange times.
double WorkerSession::send_buckets(size_t ready_from) {
  const Stopwatch sw;
  for (; next_bucket_ < buckets_.size() && buckets_[next_bucket_].begin >= ready_from; ++next_bucket_) {
    const GradientBucket& b = buckets_[next_bucket_];
    WorkerMessage out;
    threadsplit::GradientBucket* m = out.mutable_bucket();
    m->set_run_id(welcome_.run_id());
    m->set_step(step_);
    m->set_deal_id(deal_id_);
    m->set_bucket(int(next_bucket_));
    pack_floats(grad() + b.begin, b.size(), m->mutable_gradient());
    link_.write(out);
  }
  return sw.elapsed();
}

void WorkerSession::send_gradient(uint32_t deal_id, const StepNumbers& step) {
  WorkerMessage out;
  threadsplit::StepResult* r = out.mutable_step();
  r->set_run_id(welcome_.run_id());
  r->set_step(step_);
  r->set_samples(step.samples);
  r->set_deal_id(deal_id);
  r->set_loss_sum(step.model.loss_sum);
  r->set_correct(step.model.correct);
  threadsplit::PhaseTimes* t = r->mutable_times();
  t->set_data_wait_s(step.data_wait_s);
  t->set_forward_s(step.model.forward_s);
  t->set_backward_s(step.model.backward_s);
  t->set_exchange_wait_s(pending_exchange_s_);
  t->set_apply_params_s(pending_apply_s_);
  t->set_bucket_send_s(step.model.send_s);
  if (step.samples > 0 && !buckets_.empty()) r->set_buckets(int(buckets_.size()));
  else if (step.samples > 0 && plane_.valid()) {
    release_to_peer();  // the slot is written before the coordinator hears of it
    r->set_in_shared_memory(true);
  } else if (step.samples > 0) {
    pack_floats(grad(), grad_.size(), r->mutable_gradient());
  }
  link_.write(out);
}

ParamsReply WorkerSession::await_params() {
  CoordinatorMessage m = receive(WorkerWaitsFor::kParams);
  switch (m.body_case()) {
    case CoordinatorMessage::kDeal: return std::move(*m.mutable_deal());
    case CoordinatorMessage::kShutdown: return std::move(*m.mutable_shutdown());
    default: return std::move(*m.mutable_params());  // the check let nothing else through
  }
}

// Parameters the checks passed (exactly num_params finite floats), copied once, straight
// into the buffer the model's primitives load from.
void WorkerSession::install_params(const std::string& packed) { install_params(packed.data(), packed.size()); }

void WorkerSession::install_params(const char* bytes, size_t size) {
  if (!model_) {  // --exchange-only
    std::memcpy(params_.data(), bytes, size);
    return;
  }
  if (teams_->lanes() == 1) {
    std::memcpy(model_->params_to_overwrite(), bytes, size);
    return;
  }
  // Each lane copies into its own Model (its pages stay near its cores).
  teams_->run([&](int lane) {
    std::memcpy(lane_models_[size_t(lane)]->params_to_overwrite(), bytes, size);
  });
}

void WorkerSession::run_eval(const threadsplit::EvalRequest& req) {
  // The check let only "validation" (the training records) and "test" through, and a
  // test-time augmentation level of 0..2.
  const Set set = req.split() == "test" ? Set::kTest : Set::kTrain;
  const int chunk = std::min(req.batch(), welcome_.max_local_batch());
  const std::vector<TtaView> views = tta_views(req.tta_level());
  const int k = net_.num_classes;
  const Stopwatch total;
  double data_s = 0, loss_sum = 0;
  int64_t correct = 0;
  std::vector<float> images(static_cast<size_t>(chunk) * kCifarImageBytes);
  std::vector<float> view_images(views.size() > 1 ? images.size() : 0);
  std::vector<float> logits(static_cast<size_t>(chunk) * size_t(k));
  std::vector<int32_t> labels(static_cast<size_t>(chunk));
  for (int b = 0; b < req.indices_size(); b += chunk) {
    const int n = std::min(chunk, req.indices_size() - b);
    const Stopwatch data;
    try {
      assemble_batch(*data_, set, req.indices().data() + b, n, Augment::kNone, welcome_.seed(), 0,
                     images.data(), labels.data(), welcome_.normalize());
    } catch (const std::out_of_range& e) {
      throw WorkerExit{1, std::string("evaluation request: ") + e.what()};
    } catch (const DataError& e) {  // a label rewritten since open
      throw WorkerExit{2, e.what()};
    }
    data_s += data.elapsed();
    if (views.size() == 1) {
      const StepStats s = model_->evaluate(images.data(), labels.data(), n);
      loss_sum += s.loss_sum;
      correct += s.correct;
      continue;
    }
    // Test-time augmentation: the views' logits, weighted and summed, decide.
    std::fill(logits.begin(), logits.end(), 0.f);
    for (const TtaView& v : views) {
      const float* in = images.data();
      if (v.flip || v.dy != 0 || v.dx != 0) {
        apply_tta_view(images.data(), n, v, view_images.data());
        in = view_images.data();
      }
      model_->evaluate(in, labels.data(), n);
      const std::vector<float> l = model_->last_logits();
      for (size_t i = 0; i < size_t(n) * size_t(k); ++i) logits[i] += v.weight * l[i];
    }
    const LogitScore sc = score_logits(logits.data(), labels.data(), n, k);
    loss_sum += sc.loss_sum;
    correct += sc.correct;
  }
  WorkerMessage out;
  threadsplit::EvalResult* r = out.mutable_eval();
  r->set_run_id(welcome_.run_id());
  r->set_round(req.round());
  r->set_samples(req.indices_size());
  r->set_loss_sum(loss_sum);
  r->set_correct(int(correct));
  r->set_seconds(total.elapsed());
  r->set_data_s(data_s);
  link_.write(out);
}

int WorkerSession::shutdown(const threadsplit::Shutdown& s) {
  WorkerMessage out;
  threadsplit::Goodbye* g = out.mutable_goodbye();
  g->set_run_id(welcome_.run_id());
  g->set_process_threads(process_thread_count());
  g->set_omp_threads(omp_team_size());
  const ResourceUse u = resource_use();
  g->set_max_rss_kb(u.max_rss_kb);
  g->set_cpu_user_s(u.user_s);
  g->set_cpu_system_s(u.system_s);
  link_.close_with(out);
  if (s.failed()) {
    std::fprintf(stderr, "threadsplit_worker %d: the run failed at the coordinator: %s\n",
                 welcome_.rank(), s.reason().c_str());
    return 1;
  }
  return 0;
}

int WorkerSession::run() {
  join();
  while (true) {
    CoordinatorMessage m = receive(WorkerWaitsFor::kInstruction);
    switch (m.body_case()) {
      case CoordinatorMessage::kDeal: {
        DealEnd end = run_deal(m.deal());
        while (std::holds_alternative<threadsplit::EpochDeal>(end)) {
          restart_loader();
          const threadsplit::EpochDeal redeal = std::get<threadsplit::EpochDeal>(std::move(end));
          end = run_deal(redeal);
        }
        if (const auto* s = std::get_if<threadsplit::Shutdown>(&end)) return shutdown(*s);
        break;
      }
      case CoordinatorMessage::kEval:
        if (welcome_.exchange_only())
          throw WorkerExit{1, "the coordinator asked an --exchange-only worker (no model) to evaluate"};
        run_eval(m.eval());
        break;
      case CoordinatorMessage::kShutdown:
        return shutdown(m.shutdown());
      default:  // the check let only the three above through
        throw WorkerExit{1, "the coordinator sent an unexpected message between steps"};
    }
  }
}

}  // namespace

int run_worker(const WorkerConfig& config) {
  WorkerSession session(config);
  try {
    return session.run();
  } catch (const WorkerExit& e) {
    if (!e.message.empty()) std::fprintf(stderr, "threadsplit_worker: %s\n", e.message.c_str());
    return e.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit_worker: %s\n", e.what());
    return 1;
  }
}

}  // namespace ts
