#include "trainer_service.h"

#include <chrono>
#include <cstdio>
#include <limits>

#include "grpc_settings.h"
#include "timing.h"

namespace ts {

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

// One worker's stream. At most one read and one write are outstanding at a time (gRPC's
// rule), and Finish only once neither is; the session is deleted once Finish completed.
struct Session {
  struct Tag {
    Session* session;
    int op;  // TrainerService::Op
  };
  explicit Session(int accept, int read, int write, int fin)
      : accept_tag{this, accept}, read_tag{this, read}, write_tag{this, write}, finish_tag{this, fin} {}

  Tag accept_tag, read_tag, write_tag, finish_tag;
  grpc::ServerContext ctx;
  grpc::ServerAsyncReaderWriter<CoordinatorMessage, WorkerMessage> stream{&ctx};
  WorkerMessage in;
  std::string peer;
  std::shared_ptr<WorkerLink> link;  // once admitted
  std::deque<std::shared_ptr<const CoordinatorMessage>> outbox;
  bool reading = false, writing = false;
  bool read_over = false;        // the worker's side ended, or we stopped reading it
  bool write_failed = false;
  bool finish_wanted = false;    // refused, released, or the server is stopping
  bool cancelled = false;        // TryCancel() issued (a read was outstanding)
  bool goodbye = false;          // the worker said Goodbye before its stream ended
  double hello_by = 0;           // accepted: its Hello must arrive by then (0: not accepted yet)
  bool dealt = false;            // an EpochDeal was queued for it: step results may come
  bool eval_requested = false;   // an EvalRequest was queued: evaluation results may come
  bool finishing = false, finished = false;
  grpc::Status status;           // what Finish sends
};

namespace {

constexpr int kAccept = 0, kRead = 1, kWrite = 2, kFinish = 3;

// Starts the next queued write unless one is outstanding or the stream is ending.
void write_next(Session* s) {
  if (s->writing || s->outbox.empty() || s->write_failed || s->finishing || s->finished) return;
  s->writing = true;
  s->stream.Write(*s->outbox.front(), &s->write_tag);
}

// Finishes with s->status once that is wanted and no read or write is outstanding.
void finish_if_ready(Session* s) {
  if (!s->finish_wanted || s->reading || s->writing || s->finishing || s->finished) return;
  s->finishing = true;
  s->stream.Finish(s->status, &s->finish_tag);
}

std::chrono::system_clock::time_point wall_deadline(double deadline_s) {
  const double left = std::max(0.0, deadline_s - now_seconds());
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(int64_t(std::min(left, 3600.0) * 1e6));
}

}  // namespace

// ---- WorkerLink ------------------------------------------------------------------------

WorkerLink::WorkerLink(int rank, threadsplit::Hello hello, std::string peer, Session* session)
    : rank_(rank), hello_(std::move(hello)), peer_(std::move(peer)), session_(session) {}

bool WorkerLink::send(const CoordinatorMessage& m) {
  return send(std::make_shared<const CoordinatorMessage>(m));
}

bool WorkerLink::send(std::shared_ptr<const CoordinatorMessage> m) {
  Session* s = session_;
  if (!s || s->finish_wanted || s->write_failed || s->finished) return false;
  s->dealt = s->dealt || m->has_deal();
  s->eval_requested = s->eval_requested || m->has_eval();
  s->outbox.push_back(std::move(m));
  write_next(s);
  return true;
}

void WorkerLink::release() {
  Session* s = session_;
  if (!s || s->finish_wanted) return;
  s->finish_wanted = true;
  s->outbox.erase(s->outbox.begin() + (s->writing ? 1 : 0), s->outbox.end());
  if (s->reading && !s->cancelled) {
    // Still connected (stopped, hung, or simply not done): the read ends with the call.
    s->cancelled = true;
    s->ctx.TryCancel();
  }
  // Finish (status OK, or the refusal set when its message was refused) once idle.
  finish_if_ready(s);
}

// ---- TrainerService --------------------------------------------------------------------

TrainerService::TrainerService(Admission admission)
    : admission_(std::move(admission)),
      events_([this](double deadline_s) { return pump(deadline_s); }),
      links_(size_t(admission_.world_size)),
      rejoin_(size_t(admission_.world_size)),
      next_hello_due_(std::numeric_limits<double>::infinity()) {}

TrainerService::~TrainerService() {
  if (cq_ && !stopped_) {
    // stop() never ran (an error path): the server is gone by now; drain what it left.
    cq_->Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) {
    }
  }
  // Sessions whose last completion never came are freed without gRPC.
  for (Session* s : sessions_) {
    if (s->link) s->link->session_ = nullptr;
    delete s;
  }
}

void TrainerService::attach(grpc::ServerBuilder& builder) {
  builder.RegisterService(&async_);
  cq_ = builder.AddCompletionQueue();
}

void TrainerService::start() { accept_next(); }

void TrainerService::accept_next() {
  if (stopped_) return;
  Session* s = new Session(kAccept, kRead, kWrite, kFinish);
  sessions_.insert(s);
  async_.RequestSession(&s->ctx, &s->stream, cq_.get(), cq_.get(), &s->accept_tag);
}

bool TrainerService::pump(double deadline_s) {
  void* tag = nullptr;
  bool ok = false;
  // Wakes for the earliest Hello deadline too; a wake-up that only closed silent sessions
  // counts as handled, so that the caller goes on waiting until its own deadline.
  const bool hello_first = next_hello_due_ < deadline_s;
  const auto got = cq_->AsyncNext(&tag, &ok, wall_deadline(hello_first ? next_hello_due_ : deadline_s));
  if (got == grpc::CompletionQueue::GOT_EVENT) {
    auto* t = static_cast<Session::Tag*>(tag);
    on_completion(t->session, static_cast<Op>(t->op), ok);
  }
  if (got != grpc::CompletionQueue::SHUTDOWN && now_seconds() >= next_hello_due_) close_silent_sessions();
  switch (got) {
    case grpc::CompletionQueue::GOT_EVENT:
      return true;
    case grpc::CompletionQueue::TIMEOUT:
      return hello_first;
    case grpc::CompletionQueue::SHUTDOWN:
    default:
      return false;
  }
}

void TrainerService::on_completion(Session* s, Op op, bool ok) {
  switch (op) {
    case Op::kAccept:
      if (!ok) {  // the server is shutting down
        sessions_.erase(s);
        delete s;
        return;
      }
      accept_next();
      s->peer = s->ctx.peer();
      s->hello_by = now_seconds() + admission_.hello_timeout_s;
      next_hello_due_ = std::min(next_hello_due_, s->hello_by);
      read_next(s);
      return;
    case Op::kRead:
      s->reading = false;
      if (!ok) {
        s->read_over = true;
        if (s->link) {
          WorkerEvent e;
          e.rank = s->link->rank();
          e.closed = true;
          e.arrived_s = now_seconds();
          // (ServerContext::IsCancelled() may not be asked yet under the async API.)
          e.why = s->goodbye ? "it closed its stream"
                             : "its stream ended without a Goodbye: the process is gone or its "
                               "connection was lost";
          if (!s->cancelled && !superseded(s)) events_.push(std::move(e));  // a release we asked for is no news
        } else {
          finish(s, grpc::Status(grpc::StatusCode::CANCELLED, "no Hello"));
        }
        finish_if_ready(s);
        return;
      }
      if (!s->link) on_hello(s);
      else on_message(s);
      finish_if_ready(s);
      return;
    case Op::kWrite:
      s->writing = false;
      if (!ok) {
        // The worker is gone; its read side ends too and says so.
        s->write_failed = true;
        s->outbox.clear();
      } else {
        s->outbox.pop_front();
        write_next(s);
      }
      finish_if_ready(s);
      return;
    case Op::kFinish:
      s->finishing = false;
      s->finished = true;
      delete_if_done(s);
      return;
  }
}

void TrainerService::read_next(Session* s) {
  if (s->read_over || s->finish_wanted || stopped_) return;
  s->in.Clear();
  s->reading = true;
  s->stream.Read(&s->in, &s->read_tag);
}

void TrainerService::finish(Session* s, grpc::Status status) {
  if (s->finish_wanted) return;
  s->finish_wanted = true;
  s->status = std::move(status);
}

void TrainerService::delete_if_done(Session* s) {
  if (!s->finished || s->reading || s->writing) return;
  if (s->link) s->link->session_ = nullptr;
  sessions_.erase(s);
  delete s;
}

void TrainerService::record_refusal(const std::string& line) {
  ++refusals_total_;
  if (refusals_total_ <= kKeptRefusals) refusals_.push_back(line);
  if (refusals_total_ <= kLoggedRefusals)
    std::fprintf(stderr, "threadsplit: %s\n", line.c_str());
  if (refusals_total_ == kLoggedRefusals)
    std::fprintf(stderr, "threadsplit: %d refusals logged; later ones are only counted (the report "
                 "says how many)\n", kLoggedRefusals);
}

void TrainerService::refuse(Session* s, const std::string& line, grpc::Status status) {
  record_refusal(line);
  s->read_over = true;
  finish(s, std::move(status));
}

void TrainerService::close_silent_sessions() {
  const double now = now_seconds();
  next_hello_due_ = std::numeric_limits<double>::infinity();
  for (Session* s : sessions_) {
    if (s->link || s->hello_by == 0 || s->finish_wanted) continue;
    if (now < s->hello_by) {
      next_hello_due_ = std::min(next_hello_due_, s->hello_by);
      continue;
    }
    ++silent_closed_;
    const std::string why = "no Hello within " + std::to_string(int(admission_.hello_timeout_s)) +
                            " s of connecting (--connect-timeout)";
    refuse(s, "closed a connection from " + s->peer + ": " + why,
           grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, why));
    if (s->reading && !s->cancelled) {  // the read ends with the call
      s->cancelled = true;
      s->ctx.TryCancel();
    }
    finish_if_ready(s);
  }
}

std::string TrainerService::check_hello(const threadsplit::Hello& h, int* rank) {
  // The token first: nothing else in a stranger's Hello is looked at, let alone echoed.
  const std::string token = check_hello_token(h, admission_.token);
  if (!token.empty()) return token;
  const std::string shape = check_hello_message(h, kProtocolVersion);
  if (!shape.empty()) return shape;
  if (!h.run_id().empty() && h.run_id() != admission_.run_id)
    return "the worker belongs to run " + echo(h.run_id()) + ", this is run " + admission_.run_id;
  if (!h.model().empty() && h.model() != admission_.model)
    return "the worker expects model " + echo(h.model()) + ", this run trains " + admission_.model;
  if (!h.data_fingerprint().empty() && !admission_.data_fingerprint.empty() &&
      h.data_fingerprint() != admission_.data_fingerprint)
    return "the worker's CIFAR-10 copy (fingerprint " + echo(h.data_fingerprint()) +
           ") differs from the coordinator's " + admission_.data_dir + " (fingerprint " +
           admission_.data_fingerprint + "): it would train on other data; give the worker an "
           "identical copy (copy the coordinator's directory, or fetch it again with "
           "scripts/get_cifar10.sh) and point its --data at it";
  if (closed_) return "the run is no longer accepting workers";
  int r = h.rank();
  if (r == -1) {
    for (r = 0; r < admission_.world_size && links_[size_t(r)]; ++r) {
    }
    if (r == admission_.world_size)
      return "all " + std::to_string(admission_.world_size) + " ranks are taken";
  } else if (r < 0 || r >= admission_.world_size) {
    return "rank " + std::to_string(r) + " is outside 0.." + std::to_string(admission_.world_size - 1);
  } else if (links_[size_t(r)] && !rejoin_[size_t(r)]) {
    return "rank " + std::to_string(r) + " has already joined";
  } else if (rejoin_[size_t(r)]) {
    const std::string bad = check_rejoin(h, r);
    if (!bad.empty()) return bad;
  }
  *rank = r;
  return "";
}

void TrainerService::on_hello(Session* s) {
  if (!s->in.has_hello()) {
    const std::string got = worker_message_kind(s->in);
    refuse(s, "refused a connection from " + s->peer + ": its first message was not a Hello (it was " +
                  got + ")",
           grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be Hello, not " + got));
    return;
  }
  const threadsplit::Hello& hello = s->in.hello();
  int rank = -1;
  const std::string why = check_hello(hello, &rank);
  if (!why.empty()) {
    refuse(s, "refused a worker from " + s->peer + " (pid " + std::to_string(hello.binding().pid()) +
                  "): " + why,
           grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why));
    return;
  }
  s->link = std::make_shared<WorkerLink>(rank, hello, s->peer, s);
  links_[size_t(rank)] = s->link;
  // The Welcome goes first; a worker that cannot take it shows up as a closed stream.
  CoordinatorMessage m;
  *m.mutable_welcome() = welcome_for(rank);
  s->link->send(m);
  read_next(s);
}

void TrainerService::on_message(Session* s) {
  // The wire is untrusted: a message that fails the checks ends this worker's stream with a
  // status saying why (once the run releases it); the training loop applies
  // --on-worker-failure to the rank (or stops the run, for a non-finite gradient).
  if (superseded(s)) return;  // a replaced process's: dropped, and nothing more is read
  bool nonfinite = false;
  // Out of turn first: a result before its deal is a protocol violation whatever it holds
  // (a NaN in it is not the run's divergence).
  std::string bad = check_message_order(s->in, s->dealt, s->eval_requested);
  if (bad.empty()) bad = check_worker_message(s->in, admission_.limits, &nonfinite);
  WorkerEvent e;
  e.rank = s->link->rank();
  e.arrived_s = now_seconds();
  if (!bad.empty()) {
    ++refused_messages_;
    record_refusal("refused a message from worker " + std::to_string(e.rank) + " (" + s->peer + "): " + bad);
    s->read_over = true;
    s->status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "refused: " + bad);
    e.closed = true;
    e.fatal = nonfinite;
    e.why = "sent " + bad + ", which was refused";
    events_.push(std::move(e));
    return;
  }
  s->goodbye = s->goodbye || s->in.has_goodbye();
  e.message.Swap(&s->in);
  events_.push(std::move(e));
  read_next(s);
}

int TrainerService::wait_for_workers(double timeout_s, const std::function<void()>& poll) {
  const double until = now_seconds() + timeout_s;
  auto joined = [&] {
    int n = 0;
    for (const auto& l : links_) n += l ? 1 : 0;
    return n;
  };
  double next_poll = now_seconds() + 0.1;
  while (joined() < admission_.world_size && now_seconds() < until) {
    pump(std::min(until, next_poll));
    if (now_seconds() >= next_poll) {
      poll();
      next_poll = now_seconds() + 0.1;
    }
  }
  return joined();
}

bool TrainerService::send(int rank, std::shared_ptr<const CoordinatorMessage> m) {
  auto l = link(rank);
  return l && l->send(std::move(m));
}

void TrainerService::release(int rank) {
  if (auto l = link(rank)) l->release();
}

std::shared_ptr<WorkerLink> TrainerService::link(int rank) { return links_[size_t(rank)]; }

// ---- Rejoining (--respawn) ---------------------------------------------------------------

void TrainerService::expect_rejoin(int rank, int64_t pid, threadsplit::Welcome welcome) {
  rejoin_[size_t(rank)] = Rejoin{pid, std::move(welcome)};
}

std::string TrainerService::check_rejoin(const threadsplit::Hello& h, int rank) const {
  const Rejoin& j = *rejoin_[size_t(rank)];
  if (h.binding().pid() != j.pid)
    return "rank " + std::to_string(rank) + " is being replaced by pid " + std::to_string(j.pid) +
           ", not by pid " + std::to_string(h.binding().pid());
  return "";
}

threadsplit::Welcome TrainerService::welcome_for(int rank) {
  std::optional<Rejoin>& j = rejoin_[size_t(rank)];
  if (!j) return admission_.welcome(rank);
  threadsplit::Welcome w = std::move(j->welcome);
  j.reset();  // admitted: the next Hello for this rank is refused as usual
  return w;
}

bool TrainerService::superseded(const Session* s) const {
  return s->link && links_[size_t(s->link->rank())] != s->link;
}

std::shared_ptr<WorkerLink> TrainerService::wait_for_rejoin(int rank, double timeout_s,
                                                            const std::function<bool()>& gave_up) {
  const std::shared_ptr<WorkerLink> old = links_[size_t(rank)];
  const double until = now_seconds() + timeout_s;
  double next_poll = now_seconds() + 0.1;
  while (links_[size_t(rank)] == old && now_seconds() < until) {
    pump(std::min(until, next_poll));
    if (now_seconds() >= next_poll) {
      if (links_[size_t(rank)] == old && gave_up()) break;
      next_poll = now_seconds() + 0.1;
    }
  }
  if (links_[size_t(rank)] != old) return links_[size_t(rank)];
  rejoin_[size_t(rank)].reset();
  return nullptr;
}

void TrainerService::close_and_release_all() {
  closed_ = true;
  for (auto& l : links_)
    if (l) l->release();
  // Let the finishes (and the cancelled reads) complete, so that the server has nothing left
  // in flight when it shuts down.
  const double until = now_seconds() + 1.0;
  auto busy = [&] {
    for (Session* s : sessions_)
      if (s->link || s->finish_wanted) return true;
    return false;
  };
  while (busy() && now_seconds() < until) pump(until);
}

void TrainerService::stop(grpc::Server& server) {
  if (stopped_) return;
  stopped_ = true;
  // Anything still in flight is cancelled at once; its completions arrive in the drain below.
  server.Shutdown(std::chrono::system_clock::now());
  cq_->Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq_->Next(&tag, &ok)) {
    auto* t = static_cast<Session::Tag*>(tag);
    Session* s = t->session;
    switch (static_cast<Op>(t->op)) {
      case Op::kAccept: s->finished = true; break;  // never started: nothing else comes
      case Op::kRead: s->reading = false; break;
      case Op::kWrite: s->writing = false; break;
      case Op::kFinish: s->finishing = false; s->finished = true; break;
    }
    delete_if_done(s);
  }
}

}  // namespace ts
