#include "trainer_service.h"

#include <chrono>
#include <cstdio>

#include "timing.h"
#include "wire_format.h"

namespace ts {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

namespace {
bool is_step(const WorkerEvent& e) { return !e.closed && e.message.has_step(); }
}  // namespace

bool EventQueue::ready() const {
  return queued_other_ > 0 || (queued_steps_ > 0 && queued_steps_ >= gate_);
}

void EventQueue::push(WorkerEvent e) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    (is_step(e) ? queued_steps_ : queued_other_) += 1;
    events_.push_back(std::move(e));
    wake = ready();
  }
  if (wake) cv_.notify_one();
}

void EventQueue::set_step_gate(int n) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gate_ = n;
    wake = ready();
  }
  if (wake) cv_.notify_one();
}

std::optional<WorkerEvent> EventQueue::pop(double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return ready(); });
  if (events_.empty()) return std::nullopt;
  WorkerEvent e = std::move(events_.front());
  events_.pop_front();
  (is_step(e) ? queued_steps_ : queued_other_) -= 1;
  return e;
}

WorkerLink::WorkerLink(int rank, threadsplit::Hello hello, std::string peer,
                       grpc::ServerReaderWriter<CoordinatorMessage, WorkerMessage>* stream)
    : rank_(rank), hello_(std::move(hello)), peer_(std::move(peer)), stream_(stream) {}

bool WorkerLink::send(const CoordinatorMessage& m) {
  std::lock_guard<std::mutex> lock(write_mu_);
  {
    std::lock_guard<std::mutex> l2(mu_);
    if (released_) return false;
  }
  return stream_->Write(m);
}

void WorkerLink::release() {
  {
    // Taking write_mu_ first waits out a send in progress.
    std::lock_guard<std::mutex> w(write_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

void WorkerLink::wait_released() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return released_; });
}

TrainerService::TrainerService(Admission admission)
    : admission_(std::move(admission)), links_(size_t(admission_.world_size)) {}

std::string TrainerService::check_hello(const threadsplit::Hello& h, int* rank) {
  const std::string shape = check_hello_message(h, kProtocolVersion);
  if (!shape.empty()) return shape;
  if (!same_secret(h.run_token(), admission_.token))
    return "wrong run token (THREADSPLIT_TOKEN must be the coordinator's)";
  if (!h.run_id().empty() && h.run_id() != admission_.run_id)
    return "the worker belongs to run " + h.run_id() + ", this is run " + admission_.run_id;
  if (!h.model().empty() && h.model() != admission_.model)
    return "the worker expects model " + h.model() + ", this run trains " + admission_.model;
  if (closed_) return "the run is no longer accepting workers";
  int r = h.rank();
  if (r == -1) {
    for (r = 0; r < admission_.world_size && links_[size_t(r)]; ++r) {
    }
    if (r == admission_.world_size)
      return "all " + std::to_string(admission_.world_size) + " ranks are taken";
  } else if (r < 0 || r >= admission_.world_size) {
    return "rank " + std::to_string(r) + " is outside 0.." + std::to_string(admission_.world_size - 1);
  } else if (links_[size_t(r)]) {
    return "rank " + std::to_string(r) + " has already joined";
  }
  *rank = r;
  return "";
}

grpc::Status TrainerService::Session(grpc::ServerContext* context,
                                     grpc::ServerReaderWriter<CoordinatorMessage, WorkerMessage>* stream) {
  WorkerMessage first;
  if (!stream->Read(&first)) return grpc::Status(grpc::StatusCode::CANCELLED, "no Hello");
  if (!first.has_hello()) {
    const std::string line = "refused a connection from " + context->peer() +
                             ": its first message was not a Hello";
    std::fprintf(stderr, "threadsplit: %s\n", line.c_str());
    {
      std::lock_guard<std::mutex> lock(mu_);
      refusals_.push_back(line);
    }
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be Hello");
  }
  const threadsplit::Hello& hello = first.hello();
  std::shared_ptr<WorkerLink> link;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int rank = -1;
    const std::string why = check_hello(hello, &rank);
    if (!why.empty()) {
      const std::string line = "refused a worker from " + context->peer() + " (pid " +
                               std::to_string(hello.binding().pid()) + "): " + why;
      std::fprintf(stderr, "threadsplit: %s\n", line.c_str());
      refusals_.push_back(line);
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
    }
    link = std::make_shared<WorkerLink>(rank, hello, context->peer(), stream);
    // Welcome is written before the link is published: nothing else writes to it yet.
    CoordinatorMessage m;
    *m.mutable_welcome() = admission_.welcome(rank);
    if (!stream->Write(m)) return grpc::Status(grpc::StatusCode::CANCELLED, "worker left");
    links_[size_t(rank)] = link;
  }
  joined_cv_.notify_all();

  WorkerMessage msg;
  while (stream->Read(&msg)) {
    // The wire is untrusted: a message that fails the checks ends this worker's stream with
    // a status saying why; the training loop then applies --on-worker-failure to the rank
    // (or stops the run, for a non-finite gradient).
    bool nonfinite = false;
    const std::string bad = check_worker_message(msg, admission_.limits, &nonfinite);
    if (!bad.empty()) {
      const std::string line = "refused a message from worker " + std::to_string(link->rank()) + " (" +
                               context->peer() + "): " + bad;
      std::fprintf(stderr, "threadsplit: %s\n", line.c_str());
      {
        std::lock_guard<std::mutex> lock(mu_);
        refusals_.push_back(line);
        ++refused_messages_;
      }
      WorkerEvent e;
      e.rank = link->rank();
      e.closed = true;
      e.fatal = nonfinite;
      e.why = "sent " + bad + ", which was refused";
      events_.push(std::move(e));
      link->wait_released();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "refused: " + bad);
    }
    WorkerEvent e;
    e.arrived_s = now_seconds();
    e.rank = link->rank();
    e.message = std::move(msg);
    events_.push(std::move(e));
    msg = WorkerMessage();
  }
  WorkerEvent e;
  e.rank = link->rank();
  e.closed = true;
  e.why = context->IsCancelled() ? "its connection was lost" : "it closed its stream";
  events_.push(std::move(e));
  link->wait_released();
  return grpc::Status::OK;
}

int TrainerService::wait_for_workers(double timeout_s, const std::function<void()>& poll) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::unique_lock<std::mutex> lock(mu_);
  auto joined = [&] {
    int n = 0;
    for (const auto& l : links_) n += l ? 1 : 0;
    return n;
  };
  while (joined() < admission_.world_size) {
    if (std::chrono::steady_clock::now() >= until) break;
    joined_cv_.wait_for(lock, std::chrono::milliseconds(100));
    lock.unlock();
    poll();
    lock.lock();
  }
  return joined();
}

std::shared_ptr<WorkerLink> TrainerService::link(int rank) {
  std::lock_guard<std::mutex> lock(mu_);
  return links_[size_t(rank)];
}

void TrainerService::close_and_release_all() {
  std::vector<std::shared_ptr<WorkerLink>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    links = links_;
  }
  for (auto& l : links)
    if (l) l->release();
}

int TrainerService::refused_messages() {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_messages_;
}

std::vector<std::string> TrainerService::refusals() {
  std::lock_guard<std::mutex> lock(mu_);
  return refusals_;
}

}  // namespace ts
