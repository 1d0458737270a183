// TrainerService's rejoin door (--respawn, coordinator/respawner.h) over real gRPC on
// loopback: a second Hello for a rank is refused unless a replacement is expected, then only
// from the pid started for it, which gets the Welcome it was given.
#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "grpc_settings.h"
#include "timing.h"
#include "trainer.grpc.pb.h"
#include "trainer_service.h"

using namespace ts;
using threadsplit::CoordinatorMessage;
using threadsplit::WorkerMessage;

namespace {

// One worker's side: Hello as `rank` from `pid`, then the first reply, then (when admitted)
// whatever comes until the stream ends; the final status.
struct Client {
  int rank = 0;
  int pid = 0;
  std::atomic<bool> welcomed{false}, done{false};
  threadsplit::Welcome welcome;
  grpc::Status status;
  std::thread thread;

  void start(int port) {
    thread = std::thread([this, port] {
      auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
      auto stub = threadsplit::Trainer::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      auto stream = stub->Session(&ctx);
      WorkerMessage hello;
      threadsplit::Hello* h = hello.mutable_hello();
      h->set_protocol_version(kProtocolVersion);
      h->set_run_token("tok");
      h->set_run_id("run1");
      h->set_rank(rank);
      h->mutable_binding()->set_pid(pid);
      stream->Write(hello);
      CoordinatorMessage in;
      while (stream->Read(&in))
        if (in.has_welcome()) {
          welcome = in.welcome();
          welcomed = true;
        }
      status = stream->Finish();
      done = true;
    });
  }
  ~Client() {
    if (thread.joinable()) thread.join();
  }
};

// Polls the service (as the training loop would) until `cond` or the timeout.
bool pump_until(TrainerService& service, const std::function<bool()>& cond, double timeout_s) {
  const double until = now_seconds() + timeout_s;
  while (!cond() && now_seconds() < until) service.events().pop(0.05);
  return cond();
}

}  // namespace

TEST_CASE("rejoin: a rank whose link was released is admitted again only while a replacement is "
          "expected, and only from its pid, with the Welcome it was given",
          "[respawn]") {
  Admission a;
  a.token = "tok";
  a.run_id = "run1";
  a.model = "seed_cnn";
  a.world_size = 2;
  a.limits.run_id = "run1";
  a.limits.world_size = 2;
  a.welcome = [](int rank) {
    threadsplit::Welcome w;
    w.set_run_id("run1");
    w.set_rank(rank);
    w.set_step(0);
    return w;
  };
  TrainerService service(a);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  service.attach(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server);
  REQUIRE(port > 0);
  service.start();

  Client first0, first1;
  first0.rank = 0;
  first0.pid = 10;
  first1.rank = 1;
  first1.pid = 11;
  first0.start(port);
  first1.start(port);
  REQUIRE(service.wait_for_workers(20, [] {}) == 2);
  REQUIRE(pump_until(service, [&] { return first0.welcomed && first1.welcomed; }, 20));
  CHECK(first1.welcome.step() == 0);
  const auto old_link = service.link(1);

  // Rank 1 is lost: its link released, its stream ended by the coordinator.
  service.release(1);
  REQUIRE(pump_until(service, [&] { return bool(first1.done); }, 20));

  // Not expected: a Hello for rank 1 is refused as ever.
  {
    Client c;
    c.rank = 1;
    c.pid = 12;
    c.start(port);
    REQUIRE(pump_until(service, [&] { return bool(c.done); }, 20));
    CHECK_FALSE(c.welcomed);
    CHECK(c.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(c.status.error_message(), Catch::Contains("rank 1 has already joined"));
  }

  threadsplit::Welcome now = a.welcome(1);
  now.set_step(7);
  service.expect_rejoin(1, 33, now);
  // Expected from pid 33: another process holding the token is refused.
  {
    Client c;
    c.rank = 1;
    c.pid = 12;
    c.start(port);
    REQUIRE(pump_until(service, [&] { return bool(c.done); }, 20));
    CHECK_FALSE(c.welcomed);
    CHECK_THAT(c.status.error_message(), Catch::Contains("rank 1 is being replaced by pid 33, not by pid 12"));
  }
  CHECK(service.link(1) == old_link);

  // The replacement joins, with the Welcome of step 7.
  Client fresh;
  fresh.rank = 1;
  fresh.pid = 33;
  fresh.start(port);
  const auto link = service.wait_for_rejoin(1, 20, [] { return false; });
  REQUIRE(link);
  CHECK(link != old_link);
  CHECK(link->hello().binding().pid() == 33);
  REQUIRE(pump_until(service, [&] { return bool(fresh.welcomed); }, 20));
  CHECK(fresh.welcome.step() == 7);
  CHECK(fresh.welcome.rank() == 1);

  // Admitted once: the next Hello for rank 1 is refused again.
  {
    Client c;
    c.rank = 1;
    c.pid = 33;
    c.start(port);
    REQUIRE(pump_until(service, [&] { return bool(c.done); }, 20));
    CHECK_THAT(c.status.error_message(), Catch::Contains("rank 1 has already joined"));
  }
  // A replacement that never comes: the wait ends when told to give up, and nothing is left
  // expected.
  service.release(1);
  service.expect_rejoin(1, 44, now);
  const double t0 = now_seconds();
  CHECK_FALSE(service.wait_for_rejoin(1, 20, [&] { return now_seconds() - t0 > 0.3; }));
  CHECK(now_seconds() - t0 < 10);
  {
    Client c;
    c.rank = 1;
    c.pid = 44;
    c.start(port);
    REQUIRE(pump_until(service, [&] { return bool(c.done); }, 20));
    CHECK_THAT(c.status.error_message(), Catch::Contains("rank 1 has already joined"));
  }

  service.close_and_release_all();
  pump_until(service, [&] { return first0.done && fresh.done; }, 20);
  service.stop(*server);
}
