#include "coordinator_link.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "grpc_settings.h"
#include "timing.h"
#include "worker_exit.h"

namespace ts {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

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

CoordinatorLink::CoordinatorLink(const WorkerConfig& config) : config_(config) {}

CoordinatorLink::~CoordinatorLink() {
  if (stream_) ctx_.TryCancel();
}

void CoordinatorLink::open() {
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
}

void CoordinatorLink::set_silence_timeout(double s) { watchdog_->set_timeout(s); }

void CoordinatorLink::lost(const char* waiting_for) {
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

CoordinatorMessage CoordinatorLink::read(const char* waiting_for) {
  CoordinatorMessage m;
  watchdog_->waiting(true);
  const bool ok = stream_->Read(&m);
  watchdog_->waiting(false);
  if (!ok) lost(waiting_for);
  return m;
}

void CoordinatorLink::write(const WorkerMessage& m) {
  if (!stream_->Write(m)) lost("its stream to accept a message");
}

void CoordinatorLink::close_with(const WorkerMessage& last) {
  stream_->Write(last);
  stream_->WritesDone();
  stream_->Finish();
}

}  // namespace ts
