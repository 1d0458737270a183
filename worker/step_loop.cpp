#include "step_loop.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "augment.h"
#include "batch_loader.h"
#include "binding.h"
#include "cifar10.h"
#include "float_packing.h"
#include "grpc_settings.h"
#include "model.h"
#include "network.h"
#include "process_facts.h"
#include "timing.h"
#include "trainer.grpc.pb.h"
#include "wire_checks.h"

namespace ts {

namespace {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

// The run cannot go on; `code` is the process's exit status.
struct WorkerExit {
  int code;
  std::string message;
};

// Cancels the stream when the coordinator has said nothing for too long while we wait on it,
// so a hung (not dead) coordinator cannot keep a hand-started worker forever.
class SilenceWatchdog {
 public:
  explicit SilenceWatchdog(grpc::ClientContext* ctx) : ctx_(ctx), thread_([this] { run(); }) {}
  ~SilenceWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void set_timeout(double s) { timeout_s_ = s; }
  void waiting(bool w) { waiting_since_ = w ? now_seconds() : 0.0; }
  bool fired() const { return fired_; }
  double timeout() const { return timeout_s_; }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(500));
      const double since = waiting_since_;
      if (since > 0 && now_seconds() - since > timeout_s_ && !fired_) {
        fired_ = true;
        ctx_->TryCancel();
      }
    }
  }
  grpc::ClientContext* ctx_;
  std::atomic<double> timeout_s_{60};
  std::atomic<double> waiting_since_{0};
  std::atomic<bool> fired_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// A Shutdown that arrived where parameters were expected (the run is ending early).
struct ShutdownArrived {
  threadsplit::Shutdown shutdown;
};

// A deal that arrived where parameters were expected: another worker was lost and the rest
// of the epoch is re-dealt, starting again at the step this worker just computed.
struct Redealt {
  threadsplit::EpochDeal deal;
};

class WorkerSession {
 public:
  explicit WorkerSession(const WorkerConfig& c) : config_(c) {}
  ~WorkerSession() {
    loader_.reset();
    if (stream_) ctx_.TryCancel();  // a stream left without Finish() is cancelled, not leaked
  }
  int run();

 private:
  void join();
  CoordinatorMessage read(const char* waiting_for);
  CoordinatorMessage receive(WorkerWaitsFor waits);
  void write(const WorkerMessage& m);
  void run_deal(const threadsplit::EpochDeal& deal);
  void run_eval(const threadsplit::EvalRequest& req);
  int shutdown(const threadsplit::Shutdown& s);
  [[noreturn]] void lost(const char* waiting_for);
  void install_params(const std::string& packed);
  void restart_loader();

  const WorkerConfig& config_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<threadsplit::Trainer::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<SilenceWatchdog> watchdog_;
  std::unique_ptr<grpc::ClientReaderWriter<WorkerMessage, CoordinatorMessage>> stream_;

  threadsplit::Welcome welcome_;
  NetworkSpec net_;
  std::optional<Cifar10> data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<BatchLoader> loader_;
  LoaderOptions loader_options_;
  Augment augment_ = Augment::kNone;
  WorkerWireLimits limits_;       // what the coordinator's messages are held to
  std::vector<float> grad_;
  int64_t step_ = 0;              // the next global step expected
  // Exchange wait and parameter install of a step are only known after its result was sent;
  // they travel with the next result.
  double pending_exchange_s_ = 0, pending_apply_s_ = 0;
};

void WorkerSession::lost(const char* waiting_for) {
  if (watchdog_ && watchdog_->fired())
    throw WorkerExit{3, "the coordinator at " + config_.coordinator + " said nothing for " +
                            std::to_string(int(watchdog_->timeout())) + " s while this worker " +
                            "waited for " + waiting_for + "; giving up"};
  const grpc::Status st = stream_->Finish();
  if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED)
    throw WorkerExit{4, "the coordinator at " + config_.coordinator + " refused this worker: " +
                            st.error_message()};
  throw WorkerExit{3, "lost the coordinator at " + config_.coordinator + " while waiting for " +
                          waiting_for + " (" + (st.ok() ? "stream closed" : st.error_message()) +
                          "); exiting"};
}

CoordinatorMessage WorkerSession::read(const char* waiting_for) {
  CoordinatorMessage m;
  watchdog_->waiting(true);
  const bool ok = stream_->Read(&m);
  watchdog_->waiting(false);
  if (!ok) lost(waiting_for);
  return m;
}

// The next message, checked (common/wire_checks.h) against what this worker waits for.
CoordinatorMessage WorkerSession::receive(WorkerWaitsFor waits) {
  const char* what = waits == WorkerWaitsFor::kWelcome       ? "its Welcome"
                     : waits == WorkerWaitsFor::kInstruction ? "its next instruction"
                                                             : "the parameters of a step";
  CoordinatorMessage m = read(what);
  const std::string bad = check_coordinator_message(m, limits_, waits, step_);
  if (!bad.empty()) throw WorkerExit{1, bad};
  return m;
}

void WorkerSession::write(const WorkerMessage& m) {
  if (!stream_->Write(m)) lost("its stream to accept a message");
}

void WorkerSession::join() {
  // Read back before anything below changes this thread's mask.
  const threadsplit::Binding binding = read_binding();
  // gRPC's threads and the loader's are created inside this scope, so they may use every
  // core of this worker rather than inheriting the OpenMP master's single place.
  const HelperThreadCores helpers;
  grpc::ChannelArguments args;
  configure_channel(args);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  try {
    credentials = channel_credentials(config_.tls);
  } catch (const std::invalid_argument& e) {
    throw WorkerExit{2, e.what()};
  }
  channel_ = grpc::CreateCustomChannel(config_.coordinator, credentials, args);
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(int64_t(config_.connect_timeout_s * 1000));
  if (!channel_->WaitForConnected(deadline))
    throw WorkerExit{3, "cannot reach a coordinator at " + config_.coordinator + " within " +
                            std::to_string(int(config_.connect_timeout_s)) + " s" +
                            (config_.tls.ca.empty() ? "" : " over TLS") +
                            ": is it running, is the address right, and does it listen there "
                            "(--bind) with the same TLS setting?"};
  stub_ = threadsplit::Trainer::NewStub(channel_);
  watchdog_ = std::make_unique<SilenceWatchdog>(&ctx_);
  watchdog_->set_timeout(config_.connect_timeout_s);
  stream_ = stub_->Session(&ctx_);

  WorkerMessage hello;
  threadsplit::Hello* h = hello.mutable_hello();
  h->set_protocol_version(kProtocolVersion);
  h->set_run_token(config_.token);
  h->set_rank(config_.rank);
  h->set_run_id(config_.run_id);
  *h->mutable_binding() = binding;
  *h->mutable_versions() = library_versions();
  write(hello);

  CoordinatorMessage m = receive(WorkerWaitsFor::kWelcome);
  welcome_ = m.welcome();
  watchdog_->set_timeout(welcome_.silence_timeout_s() > 0 ? welcome_.silence_timeout_s() : 660);
  net_ = build_network(welcome_.model());  // known: the Welcome's check built it once
  augment_ = parse_augment(welcome_.augment());
  const std::string dir = config_.data_dir.empty() ? welcome_.data_dir() : config_.data_dir;
  try {
    data_.emplace(Cifar10::open(dir));
  } catch (const DataError& e) {
    throw WorkerExit{2, e.what()};
  }
  grad_.resize(net_.num_params);
  model_ = std::make_unique<Model>(net_, welcome_.max_local_batch());
  limits_.run_id = welcome_.run_id();
  limits_.num_params = net_.num_params;
  limits_.max_local_batch = welcome_.max_local_batch();
  step_ = welcome_.step();
  // Checked only now, so a worker whose data is missing says so (exit 2) first.
  const std::string bad = check_welcome_params(welcome_, net_.num_params);
  if (!bad.empty()) throw WorkerExit{1, bad};
  install_params(welcome_.params());
  LoaderOptions lo;
  lo.augment = augment_;
  lo.seed = welcome_.seed();
  lo.threads = welcome_.loader_threads();
  lo.capacity = std::max(2, lo.threads + 1);
  loader_options_ = lo;
  loader_ = std::make_unique<BatchLoader>(*data_, lo);
}

void WorkerSession::restart_loader() {
  // Batches queued for the old deal are dropped with the old loader.
  loader_.reset();
  const HelperThreadCores helpers;
  loader_ = std::make_unique<BatchLoader>(*data_, loader_options_);
}

// Parameters the checks passed (exactly num_params finite floats), copied once, straight
// into the buffer the model's primitives load from.
void WorkerSession::install_params(const std::string& packed) {
  std::memcpy(model_->params_to_overwrite(), packed.data(), packed.size());
}

void WorkerSession::run_deal(const threadsplit::EpochDeal& deal) {
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
  LoadedBatch batch;
  for (int i = 0; i < deal.steps_size(); ++i) {
    const auto& share = deal.steps(i);
    const int n = share.indices_size();
    WorkerMessage out;
    threadsplit::StepResult* r = out.mutable_step();
    r->set_run_id(welcome_.run_id());
    r->set_step(step_);
    r->set_samples(n);
    r->set_deal_id(deal.deal_id());
    threadsplit::PhaseTimes* t = r->mutable_times();
    t->set_exchange_wait_s(pending_exchange_s_);
    t->set_apply_params_s(pending_apply_s_);
    if (n > 0) {
      try {
        if (!loader_->pop(batch)) throw WorkerExit{1, "the loader closed"};
      } catch (const std::exception& e) {
        throw WorkerExit{1, std::string("loading step ") + std::to_string(step_) + ": " + e.what()};
      }
      if (batch.tag != step_ || batch.n != n)
        throw WorkerExit{1, "the loader returned step " + std::to_string(batch.tag) + " for step " +
                                std::to_string(step_)};
      t->set_data_wait_s(loader_->last_wait_seconds());
      const StepStats s = model_->train_step(batch.images.data(), batch.labels.data(), n,
                                             1.f / float(share.global_batch()), grad_.data());
      t->set_forward_s(s.forward_s);
      t->set_backward_s(s.backward_s);
      r->set_loss_sum(s.loss_sum);
      r->set_correct(s.correct);
    }
    // The exchange, as this worker sees it: from packing its gradient to having the
    // parameters in hand (the coordinator's averaging and update included).
    const Stopwatch exchange;
    if (n > 0) pack_floats(grad_.data(), grad_.size(), r->mutable_gradient());
    write(out);

    CoordinatorMessage m = receive(WorkerWaitsFor::kParams);
    if (m.has_shutdown()) throw ShutdownArrived{m.shutdown()};
    if (m.has_deal()) throw Redealt{m.deal()};
    pending_exchange_s_ = exchange.elapsed();
    const Stopwatch apply;
    install_params(m.params().params());
    pending_apply_s_ = apply.elapsed();
    ++step_;
  }
}

void WorkerSession::run_eval(const threadsplit::EvalRequest& req) {
  // The check let only "validation" (the training records) and "test" through.
  const Set set = req.split() == "test" ? Set::kTest : Set::kTrain;
  const int chunk = std::min(req.batch(), welcome_.max_local_batch());
  const Stopwatch total;
  double data_s = 0, loss_sum = 0;
  int64_t correct = 0;
  std::vector<float> images(static_cast<size_t>(chunk) * kCifarImageBytes);
  std::vector<int32_t> labels(static_cast<size_t>(chunk));
  for (int b = 0; b < req.indices_size(); b += chunk) {
    const int n = std::min(chunk, req.indices_size() - b);
    const Stopwatch data;
    try {
      assemble_batch(*data_, set, req.indices().data() + b, n, Augment::kNone, welcome_.seed(), 0,
                     images.data(), labels.data());
    } catch (const std::out_of_range& e) {
      throw WorkerExit{1, std::string("evaluation request: ") + e.what()};
    }
    data_s += data.elapsed();
    const StepStats s = model_->evaluate(images.data(), labels.data(), n);
    loss_sum += s.loss_sum;
    correct += s.correct;
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
  write(out);
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
  stream_->Write(out);
  stream_->WritesDone();
  stream_->Finish();
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
        threadsplit::EpochDeal deal = m.deal();
        while (true) {
          try {
            run_deal(deal);
            break;
          } catch (const ShutdownArrived& s) {
            return shutdown(s.shutdown);
          } catch (const Redealt& r) {
            restart_loader();
            deal = r.deal;
          }
        }
        break;
      }
      case CoordinatorMessage::kEval:
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
