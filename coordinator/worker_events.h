// What the training loop sees of its workers: events (a message arrived, a stream ended) in
// arrival order, and a way to send to a rank and to let it go. TrainerService (the gRPC
// service) is the real one; tests drive the collective with a scripted one.
#pragma once
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "trainer.pb.h"

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
  // Drops every queued event of `rank` (a replaced process's leftovers); returns how many.
  int drop_rank(int rank);

 private:
  bool ready() const;
  std::function<bool(double)> pump_;
  std::deque<WorkerEvent> events_;
  int gate_ = 0;
  int queued_steps_ = 0;         // StepResults in events_
  int queued_other_ = 0;         // everything else in events_
};

// The seam between the training loop (membership, collective) and the wire.
class WorkerTransport {
 public:
  virtual ~WorkerTransport() = default;
  virtual EventQueue& events() = 0;
  // Queues `m` for `rank`; false when the rank cannot be reached (never joined, or its
  // session is over or released).
  virtual bool send(int rank, std::shared_ptr<const threadsplit::CoordinatorMessage> m) = 0;
  // Ends the rank's session: nothing more is sent to it or read from it.
  virtual void release(int rank) = 0;
};

}  // namespace ts
