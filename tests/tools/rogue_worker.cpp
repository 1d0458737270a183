// A misbehaving worker for the integration tests: speaks the wire protocol by hand and breaks
// one rule on purpose, then prints the gRPC status the coordinator answered with.
//   rogue_worker HOST:PORT MODE [FROM_STEP]  (token from THREADSPLIT_TOKEN, as a real worker)
// MODE, refused at the door:  no-hello, bad-token, old-protocol, other-build, bad-rank
//       after joining:        bad-length, nan-gradient, too-many-samples, second-hello
//       liars (rank from THREADSPLIT_RANK when set; take part honestly, a zero gradient per step, until global step FROM_STEP,
//       default 2; then):     stale-deal (the current step under deal id 0, every 0.2 s,
//                             never the real result), huge-gradient (one element 1e20,
//                             finite), nan-loss (a NaN loss and gradient element, as a real
//                             divergence looks)
//       before authentication: oversized-hello (four strings of 200 KB, the right token;
//                             then 50 more such Hellos on fresh streams with a wrong token,
//                             then one of 8 MiB, over the receive limit), silent-session (opens a stream, sends nothing,
//                             and reports how the coordinator ended it), early-result (a
//                             step result right after its Welcome, before any deal)
// Exit status 0 when the coordinator refused it with a status (what the tests want),
// 1 when it was accepted where it should not have been, 2 on a usage or connection error.
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "grpc_settings.h"
#include "trainer.grpc.pb.h"
#include "wire_checks.h"

using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

namespace {

// --- Liars: workers that take part, then lie (tests/integration/test_liars.cpp) ---

bool is_liar_mode(const std::string& mode) {
  return mode == "stale-deal" || mode == "huge-gradient" || mode == "nan-loss";
}

// Plays a worker that computes nothing (a zero gradient, loss 2.3 a sample) for every dealt
// step, answers evaluation rounds and Shutdown, and from global step `from` on lies as
// `mode` says. Returns when the stream ends.
void run_liar(grpc::ClientReaderWriter<WorkerMessage, CoordinatorMessage>& stream, const std::string& mode,
              int64_t from) {
  std::mutex write_mu;  // one Write at a time: the stale sender runs beside the reader
  auto write = [&](const WorkerMessage& m) {
    std::lock_guard<std::mutex> lock(write_mu);
    return stream.Write(m);
  };
  std::string run_id;
  size_t num_params = 0;
  uint32_t deal_id = 0;
  int64_t first_step = 0;
  std::vector<int> shares;  // samples of each dealt step
  std::atomic<bool> over{false};
  std::thread stale;
  auto answer = [&](int64_t step) {
    const int64_t k = step - first_step;
    if (k < 0 || k >= int64_t(shares.size())) return;
    const int n = shares[size_t(k)];
    WorkerMessage m;
    threadsplit::StepResult* r = m.mutable_step();
    r->set_run_id(run_id);
    r->set_step(step);
    r->set_deal_id(deal_id);
    r->set_samples(n);
    r->set_loss_sum(2.3 * n);
    std::string g(n > 0 ? num_params * sizeof(float) : 0, '\0');
    if (step >= from && mode == "stale-deal") {
      if (stale.joinable()) return;
      std::printf("lying from step %lld: %s\n", (long long)step, mode.c_str());
      std::fflush(stdout);
      r->set_deal_id(0);  // never dealt: every deal id starts at 1
      r->set_gradient(g);
      stale = std::thread([&, m] {
        while (!over && write(m)) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      });
      return;
    }
    if (step >= from && g.size() >= 8) {
      if (step == from) {
        std::printf("lying from step %lld: %s\n", (long long)step, mode.c_str());
        std::fflush(stdout);
      }
      const float bad = mode == "huge-gradient" ? 1e20f : std::numeric_limits<float>::quiet_NaN();
      std::memcpy(&g[4], &bad, sizeof bad);
      if (mode == "nan-loss") r->set_loss_sum(std::numeric_limits<double>::quiet_NaN());
    }
    r->set_gradient(g);
    write(m);
  };
  CoordinatorMessage in;
  while (stream.Read(&in)) {
    if (in.has_welcome()) {
      run_id = in.welcome().run_id();
      num_params = in.welcome().params().size() / sizeof(float);
      std::printf("joined as rank %d\n", in.welcome().rank());
      std::fflush(stdout);
    } else if (in.has_deal()) {
      deal_id = in.deal().deal_id();
      first_step = in.deal().first_step();
      shares.clear();
      for (const auto& s : in.deal().steps()) shares.push_back(s.indices_size());
      answer(first_step);
    } else if (in.has_params()) {
      answer(in.params().step() + 1);
    } else if (in.has_eval()) {
      WorkerMessage m;
      threadsplit::EvalResult* r = m.mutable_eval();
      r->set_run_id(run_id);
      r->set_round(in.eval().round());
      r->set_samples(in.eval().indices_size());
      r->set_loss_sum(2.3 * in.eval().indices_size());
      write(m);
    } else if (in.has_shutdown()) {
      WorkerMessage m;
      m.mutable_goodbye()->set_run_id(run_id);
      write(m);
    }
  }
  over = true;
  if (stale.joinable()) stale.join();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: rogue_worker HOST:PORT MODE [FROM_STEP]\n");
    return 2;
  }
  const std::string target = argv[1], mode = argv[2];
  const int64_t from = argc == 4 ? std::atoll(argv[3]) : 2;
  const char* token_env = std::getenv("THREADSPLIT_TOKEN");
  const std::string token = token_env ? token_env : "";
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
    std::fprintf(stderr, "rogue_worker: cannot reach %s\n", target.c_str());
    return 2;
  }
  auto stub = threadsplit::Trainer::NewStub(channel);
  // ---- before authentication (oversized-hello, silent-session, early-result) ----
  if (mode == "silent-session") {
    // Opens a stream and never writes: the coordinator must close it after its Hello timeout.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(600));
    const auto t0 = std::chrono::steady_clock::now();
    auto stream = stub->Session(&ctx);
    CoordinatorMessage in;
    const bool got = stream->Read(&in);
    const grpc::Status st = stream->Finish();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("closed after %.1f s\nstatus %d: %s\n", s, int(st.error_code()), st.error_message().c_str());
    return got || st.ok() ? 1 : 0;
  }
  if (mode == "oversized-hello") {
    // One Hello with the right token and huge version strings (the refusal must echo a
    // truncated string), then many with a wrong token (each refused before being looked at).
    const std::string huge(200 << 10, 'v');
    int refused = 0;
    std::string first_status, last_status;
    for (int i = 0; i < 52; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      auto stream = stub->Session(&ctx);
      WorkerMessage m;
      threadsplit::Hello* h = m.mutable_hello();
      h->set_protocol_version(ts::kProtocolVersion);
      h->set_run_token(i == 0 ? token : token + "x");
      h->set_rank(-1);
      h->mutable_versions()->set_threadsplit(huge);
      h->mutable_versions()->set_networks(huge);
      h->mutable_versions()->set_onednn(huge);
      h->mutable_binding()->set_hostname(i == 51 ? std::string(8 << 20, 'h') : huge);
      stream->Write(m);
      stream->WritesDone();
      CoordinatorMessage in;
      const bool welcomed = stream->Read(&in) && in.has_welcome();
      const grpc::Status st = stream->Finish();
      if (welcomed || st.ok()) {
        std::printf("accepted Hello %d\n", i);
        return 1;
      }
      const std::string line = "status " + std::to_string(int(st.error_code())) + ": " + st.error_message();
      (i == 0 ? first_status : last_status) = line;
      ++refused;
    }
    std::printf("first %s\nlast %s\nrefused %d Hellos\n", first_status.c_str(), last_status.c_str(), refused);
    return 0;
  }
  grpc::ClientContext ctx;
  // Liars take part in a whole (short) run.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(is_liar_mode(mode) ? 300 : 60));
  auto stream = stub->Session(&ctx);

  WorkerMessage hello;
  threadsplit::Hello* h = hello.mutable_hello();
  h->set_protocol_version(ts::kProtocolVersion);
  h->set_run_token(token);
  h->set_rank(-1);
  h->mutable_binding()->set_pid(int(getpid()));  // so the coordinator can name it
  if (is_liar_mode(mode) && std::getenv("THREADSPLIT_RANK")) h->set_rank(std::atoi(std::getenv("THREADSPLIT_RANK")));
  h->mutable_versions()->set_threadsplit(ts::threadsplit_version());
  h->mutable_versions()->set_networks(ts::networks_fingerprint());
  if (mode == "bad-token") h->set_run_token(token + "x");
  if (mode == "old-protocol") h->set_protocol_version(ts::kProtocolVersion + 7);
  if (mode == "other-build") h->mutable_versions()->set_networks("0badc0de");
  if (mode == "bad-rank") h->set_rank(999);
  if (mode == "no-hello") {
    WorkerMessage m;
    m.mutable_step()->set_step(0);
    stream->Write(m);
  } else {
    stream->Write(hello);
  }

  if (is_liar_mode(mode)) {
    run_liar(*stream, mode, from);
    const grpc::Status st = stream->Finish();
    std::printf("status %d: %s\n", int(st.error_code()), st.error_message().c_str());
    return st.ok() ? 1 : 0;
  }
  CoordinatorMessage in;
  std::string run_id;
  int rank = -1;
  size_t num_params = 0;  // from the Welcome's parameters
  while (stream->Read(&in)) {
    if (in.has_welcome()) {
      run_id = in.welcome().run_id();
      rank = in.welcome().rank();
      num_params = in.welcome().params().size() / sizeof(float);
      std::printf("joined as rank %d\n", rank);
      std::fflush(stdout);
      if (mode == "second-hello") stream->Write(hello);
      if (mode == "early-result") {  // a result before any EpochDeal
        WorkerMessage m;
        threadsplit::StepResult* r = m.mutable_step();
        r->set_run_id(run_id);
        r->set_step(0);
        r->set_samples(1);
        r->set_loss_sum(2.3);
        r->set_gradient(std::string(num_params * sizeof(float), '\0'));
        stream->Write(m);
      }
    } else if (in.has_deal()) {
      const auto& d = in.deal();
      WorkerMessage m;
      threadsplit::StepResult* r = m.mutable_step();
      r->set_run_id(run_id);
      r->set_step(d.first_step());
      r->set_deal_id(d.deal_id());
      const int n = d.steps_size() ? d.steps(0).indices_size() : 0;
      r->set_samples(mode == "too-many-samples" ? 1 << 20 : n);
      r->set_loss_sum(2.3 * n);
      std::string g((mode == "bad-length" ? num_params + 3 : num_params) * sizeof(float), '\0');
      if (mode == "nan-gradient" && g.size() >= 8) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(&g[4], &nan, sizeof nan);
      }
      r->set_gradient(g);
      stream->Write(m);
    }
  }
  const grpc::Status st = stream->Finish();
  std::printf("status %d: %s\n", int(st.error_code()), st.error_message().c_str());
  return st.ok() ? 1 : 0;
}
