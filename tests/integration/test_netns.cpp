// Across hosts, simulated: the coordinator and a hand-started worker in two network
// namespaces joined by a veth pair, so they talk over a real interface rather than loopback.
// Shows the bind rule (a default, loopback-only coordinator cannot be reached from the other
// namespace; --bind on the veth address can) and the token rule (a wrong token is refused
// over the interface, the right one trains). Needs root and ip(8) with netns support;
// skipped with the reason where either is missing.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "run_helpers.h"
#include "skip.h"

namespace fs = std::filesystem;

namespace {

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// Two namespaces and a veth pair, removed again when it goes out of scope.
struct VethPair {
  std::string a, b, ip_a = "10.197.0.1", ip_b = "10.197.0.2", why_not;
  bool ok = false;
  VethPair() {
    const std::string tag = std::to_string(getpid() % 100000);
    a = "tsA" + tag;
    b = "tsB" + tag;
    if (geteuid() != 0) {
      why_not = "not root (ip netns needs CAP_SYS_ADMIN)";
      return;
    }
    if (sh("command -v ip") != 0) {
      why_not = "ip(8) is not installed (apt-get install iproute2)";
      return;
    }
    if (sh("ip netns add " + a) != 0 || sh("ip netns add " + b) != 0) {
      why_not = "ip netns add is not permitted here (container without CAP_SYS_ADMIN?)";
      return;
    }
    const std::string va = "va" + tag, vb = "vb" + tag;
    ok = sh("ip link add " + va + " type veth peer name " + vb) == 0 &&
         sh("ip link set " + va + " netns " + a) == 0 && sh("ip link set " + vb + " netns " + b) == 0 &&
         sh("ip -n " + a + " addr add " + ip_a + "/24 dev " + va) == 0 &&
         sh("ip -n " + b + " addr add " + ip_b + "/24 dev " + vb) == 0 &&
         sh("ip -n " + a + " link set " + va + " up") == 0 && sh("ip -n " + b + " link set " + vb + " up") == 0 &&
         sh("ip -n " + a + " link set lo up") == 0 && sh("ip -n " + b + " link set lo up") == 0;
    if (!ok) why_not = "a veth pair could not be set up between the namespaces";
  }
  ~VethPair() {
    sh("ip netns del " + a);
    sh("ip netns del " + b);
  }
  std::vector<std::string> in(const std::string& ns, std::vector<std::string> argv) const {
    std::vector<std::string> full = {"/usr/bin/env", "ip", "netns", "exec", ns};
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }
};

}  // namespace

TEST_CASE("over a veth pair between network namespaces, loopback binding keeps the other side "
          "out, and with --bind a wrong token is refused and the right one trains",
          "[integration][netns]") {
  VethPair net;
  if (!net.ok) {
    ts_test::skip_test(net.why_not);
    return;
  }
  const std::string token = "netns-token-31337";
  const std::string port_file = ts_test::tmp_dir() + "/netns.port";

  // 1. The default bind is loopback: nothing in the other namespace can reach it.
  fs::remove(port_file);
  ts_test::Process local = ts_test::start(
      "netns_loopback",
      net.in(net.a, {THREADSPLIT_BIN, "--data", ts_test::test_data_dir(), "--external-workers", "1",
                     "--port-file", port_file, "--connect-timeout", "30"}),
      {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  std::string port = std::to_string(std::stoi(ts_test::read_text(port_file)));
  ts_test::Process outside = ts_test::start(
      "netns_outside", net.in(net.b, {THREADSPLIT_WORKER_BIN, "--coordinator", net.ip_a + ":" + port,
                                      "--connect-timeout", "2"}),
      {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  CHECK(ts_test::wait_exit(outside, 30) == 3);
  CHECK_THAT(outside.err(), Catch::Contains("cannot reach a coordinator at " + net.ip_a));
  kill(local.pid, SIGKILL);
  ts_test::wait_exit(local, 10);

  // 2. Bound to the veth address: the token decides.
  fs::remove(port_file);
  ts_test::Process coord = ts_test::start(
      "netns_bound",
      net.in(net.a, {THREADSPLIT_BIN, "--data", ts_test::test_data_dir(), "--external-workers", "1",
                     "--bind", net.ip_a, "--port-file", port_file, "--steps", "3", "--eval-every", "0",
                     "--connect-timeout", "60"}),
      {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  port = std::to_string(std::stoi(ts_test::read_text(port_file)));
  const std::vector<std::string> worker = {THREADSPLIT_WORKER_BIN, "--coordinator", net.ip_a + ":" + port};
  ts_test::Process wrong = ts_test::start("netns_wrong_token", net.in(net.b, worker),
                                          {"THREADSPLIT_TOKEN=guessed", "OMP_NUM_THREADS=1"});
  CHECK(ts_test::wait_exit(wrong, 60) == 4);
  CHECK_THAT(wrong.err(), Catch::Contains("refused this worker: wrong run token"));
  ts_test::Process right = ts_test::start("netns_right_token", net.in(net.b, worker),
                                          {"THREADSPLIT_TOKEN=" + token, "OMP_NUM_THREADS=1"});
  const int rc = ts_test::wait_exit(coord, 120);
  INFO(coord.out() << coord.err());
  CHECK(rc == 0);
  CHECK(ts_test::wait_exit(right, 60) == 0);
  CHECK_THAT(coord.err(), Catch::Contains("refused a worker from ipv4:" + net.ip_b) &&
                              Catch::Contains("not loopback"));
  CHECK_THAT(coord.out(), Catch::Contains("trained 3 steps"));
}
