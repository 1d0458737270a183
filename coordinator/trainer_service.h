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

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trainer.grpc.pb.h"
#include "wire_checks.h"
#include "worker_events.h"

namespace ts {

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
  std::string data_fingerprint;  // Cifar10::fingerprint of data_dir; a worker's must match
  std::string data_dir;          // for the refusal's words
  // A stream must send its Hello within this many seconds of connecting, else it is closed
  // (--connect-timeout): a stranger cannot hold sessions open for ever.
  double hello_timeout_s = 60;
  WireLimits limits;             // every message after Hello is checked against these
  // Builds the Welcome for a newly admitted rank.
  std::function<threadsplit::Welcome(int rank)> welcome;
};

class TrainerService : public WorkerTransport {
 public:
  explicit TrainerService(Admission admission);
  ~TrainerService();
  TrainerService(const TrainerService&) = delete;
  TrainerService& operator=(const TrainerService&) = delete;

  // Before builder.BuildAndStart(): registers the service and its completion queue.
  void attach(grpc::ServerBuilder& builder);
  // After BuildAndStart(): starts accepting sessions.
  void start();

  // WorkerTransport
  EventQueue& events() override { return events_; }
  bool send(int rank, std::shared_ptr<const threadsplit::CoordinatorMessage> m) override;
  void release(int rank) override;

  // Waits until every rank joined or timeout_s passed; `poll` runs every 100 ms and may
  // throw to give up early (a spawned worker that died). Returns the number joined.
  int wait_for_workers(double timeout_s, const std::function<void()>& poll);

  // The link of a rank; null before it joined.
  std::shared_ptr<WorkerLink> link(int rank);

  // Rejoining (--respawn, coordinator/respawner.h): the next Hello for `rank`, whose link was
  // released, is admitted (the same checks as a first Hello, and it must come from `pid`) and
  // answered with `welcome` instead of the run's first Welcome. The old process's session
  // sends nothing more into the queue once the new one joined.
  void expect_rejoin(int rank, int64_t pid, threadsplit::Welcome welcome);
  // Polls until that Hello came (its new link), timeout_s passed or `gave_up` says so (the
  // process exited); a rank that did not rejoin is no longer expected.
  std::shared_ptr<WorkerLink> wait_for_rejoin(int rank, double timeout_s,
                                              const std::function<bool()>& gave_up);

  // No more joins (later Hellos are refused); release every link and let the sessions end
  // (bounded: a second at most).
  void close_and_release_all();

  // Shuts the server down and drains the completion queue. Call once, at the end.
  void stop(grpc::Server& server);

  // Messages refused so far (a closed stream each); for tests and the report.
  int refused_messages() const { return refused_messages_; }

  // The first kKeptRefusals refusals, one line each, for the report; refusals_total() counts
  // them all. Each is logged on stderr up to kLoggedRefusals, then only counted, so a client
  // that reconnects in a loop cannot grow the coordinator's memory, log or report.
  static constexpr int kKeptRefusals = 20;
  static constexpr int kLoggedRefusals = 100;
  std::vector<std::string> refusals() const { return refusals_; }
  int64_t refusals_total() const { return refusals_total_; }
  // Streams closed for sending no Hello within Admission::hello_timeout_s; for tests.
  int silent_sessions_closed() const { return silent_closed_; }

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
  void record_refusal(const std::string& line);
  void close_silent_sessions();
  std::string check_hello(const threadsplit::Hello& h, int* rank);
  // For a rank expected to rejoin: "" to admit it, else why not. Null welcome: not expected.
  std::string check_rejoin(const threadsplit::Hello& h, int rank) const;
  threadsplit::Welcome welcome_for(int rank);
  // The session is an old process's, its rank taken over by a rejoined one.
  bool superseded(const Session* s) const;

  const Admission admission_;
  threadsplit::Trainer::AsyncService async_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  EventQueue events_;
  std::set<Session*> sessions_;
  std::vector<std::shared_ptr<WorkerLink>> links_;  // by rank
  std::vector<std::string> refusals_;
  struct Rejoin {
    int64_t pid = 0;
    threadsplit::Welcome welcome;
  };
  std::vector<std::optional<Rejoin>> rejoin_;       // by rank: expected to rejoin
  int64_t refusals_total_ = 0;
  int silent_closed_ = 0;
  double next_hello_due_;        // the earliest hello_by of a session without a Hello (or inf)
  bool closed_ = false;          // no more joins
  bool stopped_ = false;         // the server is shut down: accept nothing, post nothing
  int refused_messages_ = 0;
};

}  // namespace ts
