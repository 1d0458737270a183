#include "worker_events.h"

#include "timing.h"

namespace ts {

namespace {

bool is_step(const WorkerEvent& e) { return !e.closed && e.message.has_step(); }

}  // namespace

bool EventQueue::ready() const {
  return queued_other_ > 0 || (queued_steps_ > 0 && queued_steps_ >= gate_);
}

void EventQueue::push(WorkerEvent e) {
  (is_step(e) ? queued_steps_ : queued_other_) += 1;
  events_.push_back(std::move(e));
}

std::optional<WorkerEvent> EventQueue::pop(double timeout_s) {
  const double deadline = now_seconds() + timeout_s;
  while (!ready() && now_seconds() < deadline)
    if (!pump_(deadline)) break;
  if (events_.empty()) return std::nullopt;
  WorkerEvent e = std::move(events_.front());
  events_.pop_front();
  (is_step(e) ? queued_steps_ : queued_other_) -= 1;
  return e;
}

int EventQueue::drop_rank(int rank) {
  int dropped = 0;
  for (auto it = events_.begin(); it != events_.end();) {
    if (it->rank != rank) {
      ++it;
      continue;
    }
    (is_step(*it) ? queued_steps_ : queued_other_) -= 1;
    it = events_.erase(it);
    ++dropped;
  }
  return dropped;
}

}  // namespace ts
