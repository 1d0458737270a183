// Placement in real runs on this machine: the run's first lines and its report show the
// topology and where each worker went, and a worker applies and reports its memory policy.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core_set.h"
#include "run_helpers.h"

namespace fs = std::filesystem;
using nlohmann::json;

TEST_CASE("a run shows the machine's topology and each worker's place, node and memory policy",
          "[integration][placement]") {
  const ts::CoreSet mine = ts::CoreSet::of_this_process();
  const std::string report = ts_test::tmp_dir() + "/placement_report.json";
  fs::remove(report);
  const int P = mine.size() >= 2 ? 2 : 1;
  ts_test::Process coord = ts_test::start(
      "placement_run", ts_test::coordinator_args({"--procs", std::to_string(P), "--threads", "1", "--steps", "3",
                                                  "--eval-every", "0", "--report", report}));
  const int rc = ts_test::wait_exit(coord, 180);
  INFO("coordinator:\n" << coord.out() << coord.err());
  REQUIRE(rc == 0);
  CHECK_THAT(coord.out(), Catch::Contains("threadsplit: machine: ") && Catch::Contains("(this machine (hwloc ") &&
                              Catch::Contains("threadsplit: placement numa, smt avoid:") &&
                              Catch::Contains("threadsplit:   worker 0: cores "));
  const json j = json::parse(ts_test::read_text(report));
  const json& topo = j.at("topology");
  CHECK(topo.at("hardware_threads").get<int>() == mine.size());
  CHECK(topo.at("numa_nodes").get<int>() >= 1);
  CHECK(topo.at("physical_cores").get<int>() <= mine.size());
  const json& placed = j.at("split").at("placement").at("workers");
  REQUIRE(placed.size() == size_t(P));
  REQUIRE(j.at("workers").size() == size_t(P));
  for (int r = 0; r < P; ++r) {
    const json& w = j.at("workers").at(size_t(r));
    // What the worker read back is what the placement gave it.
    CHECK(w.at("cores") == placed.at(size_t(r)).at("cores"));
    CHECK(w.at("assigned_cores") == placed.at(size_t(r)).at("cores"));
    CHECK(w.at("numa_nodes") == placed.at(size_t(r)).at("numa_nodes"));
    // One node: nothing is set, and the kernel's default (first touch) is what it reads.
    if (topo.at("numa_nodes").get<int>() == 1) {
      CHECK(placed.at(size_t(r)).at("memory") == "first touch");
      CHECK(w.at("memory_policy") == "first touch");
    } else {
      CHECK(w.at("memory_policy").get<std::string>().rfind("bind:", 0) == 0);
    }
  }
  if (P == 2) CHECK(placed.at(0).at("cores") != placed.at(1).at("cores"));
}

TEST_CASE("a worker applies the memory policy it is given, and refuses a malformed one",
          "[integration][placement]") {
  const std::string token = "placement-membind-token";
  const std::string port_file = ts_test::tmp_dir() + "/placement_membind.port";
  const std::string report = ts_test::tmp_dir() + "/placement_membind.json";
  fs::remove(port_file);
  fs::remove(report);
  // Node 0 exists on every Linux machine: binding to it is always allowed.
  ts_test::Process coord = ts_test::start(
      "placement_membind",
      ts_test::coordinator_args({"--external-workers", "1", "--steps", "2", "--eval-every", "0", "--port-file",
                                 port_file, "--report", report}),
      {"THREADSPLIT_TOKEN=" + token});
  REQUIRE(ts_test::wait_until([&] { return fs::exists(port_file); }, 60));
  const std::string addr = "127.0.0.1:" + std::to_string(std::stoi(ts_test::read_text(port_file)));
  ts_test::Process bad = ts_test::start("placement_membind_bad", {THREADSPLIT_WORKER_BIN, "--coordinator", addr},
                                        {"THREADSPLIT_TOKEN=" + token, "THREADSPLIT_MEMBIND=bind:zero"});
  CHECK(ts_test::wait_exit(bad, 60) == 2);
  CHECK_THAT(bad.err(), Catch::Contains("THREADSPLIT_MEMBIND must be bind:N[,M...] or interleave:N,M...") &&
                            Catch::Contains("'bind:zero'"));
  ts_test::Process good = ts_test::start("placement_membind_good", {THREADSPLIT_WORKER_BIN, "--coordinator", addr},
                                         {"THREADSPLIT_TOKEN=" + token, "THREADSPLIT_MEMBIND=bind:0",
                                          "OMP_NUM_THREADS=1"});
  const int rc = ts_test::wait_exit(coord, 120);
  INFO("coordinator:\n" << coord.out() << coord.err());
  CHECK(rc == 0);
  CHECK(ts_test::wait_exit(good, 30) == 0);
  const json j = json::parse(ts_test::read_text(report));
  CHECK(j.at("workers").at(0).at("memory_policy") == "bind:0");
  CHECK(j.at("workers").at(0).at("numa_nodes") == json::array({0}));
  CHECK_THAT(coord.out(), Catch::Contains("node 0, memory bound to node 0"));
  // Hand-started workers bring their own binding: the run places nothing.
  CHECK_FALSE(j.contains("topology"));
}

TEST_CASE("threadsplit placement shows where a split's workers go on a described machine",
          "[integration][placement]") {
  ts_test::Process p = ts_test::start(
      "placement_command", {THREADSPLIT_BIN, "placement", "--topology", "pack:2 numa:2 l3:2 core:8 pu:2",
                            "--procs", "4", "--threads", "16"});
  REQUIRE(ts_test::wait_exit(p, 60) == 0);
  // Synthetic OS numbers: core c = PUs 2c and 2c+1, so node n's first threads are 32n, 32n+2, ...
  CHECK_THAT(p.out(), Catch::Contains("machine: 2 packages, 4 NUMA nodes, 8 L3 domains, 64 cores, 128 PUs (2 per core)") &&
                          Catch::Contains("64 threads before SMT siblings") &&
                          Catch::Contains("4x1x16:") &&
                          Catch::Contains("worker 3: cores 96,98,100,102,104,106,108,110,112,114,116,118,120,122,124,126 "
                                          "(node 3, package 1, L3 6,7), memory bound to node 3"));
  ts_test::Process all = ts_test::start("placement_command_all", {THREADSPLIT_BIN, "placement", "--topology",
                                                                  "pack:1 numa:2 core:4 pu:1"});
  REQUIRE(ts_test::wait_exit(all, 60) == 0);
  for (const char* split : {"1x1x8:", "1x2x4:", "2x1x4:", "2x2x2:", "4x1x2:", "8x1x1:", "1x8x1:"})
    CHECK_THAT(all.out(), Catch::Contains(split));
  CHECK_THAT(all.out(), Catch::Contains("worker 0 straddles NUMA nodes (a worker's 8 threads are more than a node's 4)"));
  ts_test::Process bad = ts_test::start("placement_command_bad", {THREADSPLIT_BIN, "placement", "--topology", "sockets:2"});
  CHECK(ts_test::wait_exit(bad, 60) == 2);
  CHECK_THAT(bad.err(), Catch::Contains("hwloc does not understand the synthetic topology 'sockets:2'"));
  ts_test::Process missing = ts_test::start("placement_command_missing",
                                            {THREADSPLIT_BIN, "placement", "--topology", "/nonexistent/m.xml"});
  CHECK(ts_test::wait_exit(missing, 60) == 2);
  CHECK_THAT(missing.err(), Catch::Contains("/nonexistent/m.xml does not exist"));
}
