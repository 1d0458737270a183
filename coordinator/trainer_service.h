// The coordinator's gRPC service: admits workers (token, protocol, rank, model), hands each
// its Welcome, then turns everything the workers send into one queue of events that the
// training loop consumes in its own thread. The loop writes to a worker through its
// WorkerLink; each Session handler stays alive (so its stream stays valid) until the run
// releases the link.
//
// Synchronous gRPC API: one server thread per connected worker blocks in Read(); the thread
// pool is capped by a ResourceQuota sized to the run, so gRPC's threads stay countable.
#pragma once
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "trainer.grpc.pb.h"
#include "wire_checks.h"

namespace ts {

// Something a worker did: a message arrived, or its stream ended.
struct WorkerEvent {
  int rank = -1;
  bool closed = false;           // the stream ended; `why` says how
  bool fatal = false;            // ... because of what it sent, which stops the run (NaN)
  std::string why;
  double arrived_s = 0;          // when its handler had it (common/timing.h clock)
  threadsplit::WorkerMessage message;
};

// The events of every worker, in arrival order. While a step runs, the training loop sets a
// gate of the n step results it still needs: a StepResult then wakes it only when n are
// queued, so the coordinator does not wake (and take a core from a worker still computing)
// for every early gradient; anything else (a closed stream, another message) wakes it at once.
class EventQueue {
 public:
  void push(WorkerEvent e);
  // Waits up to timeout_s for a wake-up as above, then returns the oldest event, if any:
  // after a timeout, results held back by the gate are returned too.
  std::optional<WorkerEvent> pop(double timeout_s);
  // 0 (the default) wakes on every event.
  void set_step_gate(int n);

 private:
  bool ready() const;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WorkerEvent> events_;
  int gate_ = 0;
  int queued_steps_ = 0;         // StepResults in events_
  int queued_other_ = 0;         // everything else in events_
};

class WorkerLink {
 public:
  WorkerLink(int rank, threadsplit::Hello hello, std::string peer,
             grpc::ServerReaderWriter<threadsplit::CoordinatorMessage, threadsplit::WorkerMessage>* stream);

  int rank() const { return rank_; }
  const threadsplit::Hello& hello() const { return hello_; }
  const std::string& peer() const { return peer_; }

  // Writes one message; false when the stream is broken (the worker is gone).
  bool send(const threadsplit::CoordinatorMessage& m);

  // Lets the Session handler return; no send() after this.
  void release();
  void wait_released();

 private:
  const int rank_;
  const threadsplit::Hello hello_;
  const std::string peer_;
  grpc::ServerReaderWriter<threadsplit::CoordinatorMessage, threadsplit::WorkerMessage>* stream_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// Who may join, and what they get.
struct Admission {
  std::string token;
  std::string run_id;
  std::string model;
  int world_size = 0;
  WireLimits limits;             // every message after Hello is checked against these
  // Builds the Welcome for a newly admitted rank (called on the handler's thread).
  std::function<threadsplit::Welcome(int rank)> welcome;
};

class TrainerService final : public threadsplit::Trainer::Service {
 public:
  explicit TrainerService(Admission admission);

  grpc::Status Session(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<threadsplit::CoordinatorMessage, threadsplit::WorkerMessage>* stream)
      override;

  EventQueue& events() { return events_; }

  // Waits until every rank joined or timeout_s passed; `poll` runs every 100 ms and may
  // throw to give up early (a spawned worker that died). Returns the number joined.
  int wait_for_workers(double timeout_s, const std::function<void()>& poll);

  // The link of a rank; null before it joined.
  std::shared_ptr<WorkerLink> link(int rank);

  // No more joins (later Hellos are refused); release every link so handlers can return.
  void close_and_release_all();

  // Messages refused so far (a closed stream each); for tests and the report.
  int refused_messages();

  // Refusals so far, one line each, for the report.
  std::vector<std::string> refusals();

 private:
  std::string check_hello(const threadsplit::Hello& h, int* rank);

  const Admission admission_;
  EventQueue events_;
  std::mutex mu_;
  std::condition_variable joined_cv_;
  std::vector<std::shared_ptr<WorkerLink>> links_;  // by rank
  std::vector<std::string> refusals_;
  bool closed_ = false;
  int refused_messages_ = 0;
};

}  // namespace ts
