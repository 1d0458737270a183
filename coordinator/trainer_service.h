// The coordinator's gRPC service: admits workers (token, protocol, rank, model), hands each
// its Welcome, then turns everything the workers send into one queue of events that the
// training loop consumes, and writes what the loop sends.
//
// Asynchronous gRPC API, driven by the training loop's own thread: popping an event (or
// waiting for workers to join) polls the service's completion queue, so the thread that the
// kernel wakes when a gradient arrives is the one that reads it, checks it and, once a step's
// last gradient is in, averages, updates and sends the parameters. No handler threads, no
// hand-offs between threads on the step's critical path, and a coordinator whose thread count
// does not grow with the number of workers. The price: between pops nothing is read (the
// kernel buffers it), and everything here runs on that one thread (not thread-safe).
#pragma once
#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
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
  double arrived_s = 0;          // when it was read (common/timing.h clock)
  threadsplit::WorkerMessage message;
};

// The events of every worker, in arrival order. While a step runs, the training loop sets a
// gate of the n step results it still needs: pop() then returns a StepResult only once n are
// queued, so the loop does not stop reading to handle each early gradient; anything else (a
// closed stream, another message) is returned at once.
class EventQueue {
 public:
  // `pump` waits for and handles at most one completion of the service, until the deadline
  // (common/timing.h clock); it returns false when nothing came.
  explicit EventQueue(std::function<bool(double deadline_s)> pump) : pump_(std::move(pump)) {}
  void push(WorkerEvent e);
  // Polls the service until the gate opens or timeout_s passed, then returns the oldest
  // event, if any: after a timeout, results held back by the gate are returned too.
  std::optional<WorkerEvent> pop(double timeout_s);
  // 0 (the default) lets every event through.
  void set_step_gate(int n) { gate_ = n; }

 private:
  bool ready() const;
  std::function<bool(double)> pump_;
  std::deque<WorkerEvent> events_;
  int gate_ = 0;
  int queued_steps_ = 0;         // StepResults in events_
  int queued_other_ = 0;         // everything else in events_
};

struct Session;  // one worker's stream (trainer_service.cpp)

class WorkerLink {
 public:
  WorkerLink(int rank, threadsplit::Hello hello, std::string peer, Session* session);

  int rank() const { return rank_; }
  const threadsplit::Hello& hello() const { return hello_; }
  const std::string& peer() const { return peer_; }

  // Queues one message, written as soon as the ones before it are; false when the session is
  // over or released. A message that cannot be delivered later ends the stream, which shows up
  // as a closed event.
  bool send(const threadsplit::CoordinatorMessage& m);
  // The same message may be queued on several links without copies.
  bool send(std::shared_ptr<const threadsplit::CoordinatorMessage> m);

  // Ends the session: no send() after this. A worker still connected is cancelled.
  void release();

 private:
  friend class TrainerService;
  const int rank_;
  const threadsplit::Hello hello_;
  const std::string peer_;
  Session* session_;             // null once the session is gone
};

// Who may join, and what they get.
struct Admission {
  std::string token;
  std::string run_id;
  std::string model;
  int world_size = 0;
  WireLimits limits;             // every message after Hello is checked against these
  // Builds the Welcome for a newly admitted rank.
  std::function<threadsplit::Welcome(int rank)> welcome;
};

class TrainerService {
 public:
  explicit TrainerService(Admission admission);
  ~TrainerService();
  TrainerService(const TrainerService&) = delete;
  TrainerService& operator=(const TrainerService&) = delete;

  // Before builder.BuildAndStart(): registers the service and its completion queue.
  void attach(grpc::ServerBuilder& builder);
  // After BuildAndStart(): starts accepting sessions.
  void start();

  EventQueue& events() { return events_; }

  // Waits until every rank joined or timeout_s passed; `poll` runs every 100 ms and may
  // throw to give up early (a spawned worker that died). Returns the number joined.
  int wait_for_workers(double timeout_s, const std::function<void()>& poll);

  // The link of a rank; null before it joined.
  std::shared_ptr<WorkerLink> link(int rank);

  // No more joins (later Hellos are refused); release every link and let the sessions end
  // (bounded: a second at most).
  void close_and_release_all();

  // Shuts the server down and drains the completion queue. Call once, at the end.
  void stop(grpc::Server& server);

  // Messages refused so far (a closed stream each); for tests and the report.
  int refused_messages() const { return refused_messages_; }

  // Refusals so far, one line each, for the report.
  std::vector<std::string> refusals() const { return refusals_; }

 private:
  friend class WorkerLink;
  enum class Op { kAccept, kRead, kWrite, kFinish };
  bool pump(double deadline_s);
  void on_completion(Session* s, Op op, bool ok);
  void accept_next();
  void on_hello(Session* s);
  void on_message(Session* s);
  void read_next(Session* s);
  // Finishes with `status` as soon as no read or write is outstanding.
  void finish(Session* s, grpc::Status status);
  void delete_if_done(Session* s);
  void refuse(Session* s, const std::string& line, grpc::Status status);
  std::string check_hello(const threadsplit::Hello& h, int* rank);

  const Admission admission_;
  threadsplit::Trainer::AsyncService async_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  EventQueue events_;
  std::set<Session*> sessions_;
  std::vector<std::shared_ptr<WorkerLink>> links_;  // by rank
  std::vector<std::string> refusals_;
  bool closed_ = false;          // no more joins
  bool stopped_ = false;         // the server is shut down: accept nothing, post nothing
  int refused_messages_ = 0;
};

}  // namespace ts
