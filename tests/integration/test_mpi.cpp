// Workers started by OpenMPI's mpirun, through scripts/launch_mpi.sh on a one-host hostfile
// ("localhost slots=2"): each takes its rank from OMPI_COMM_WORLD_RANK, reports the cores
// mpirun bound it to, and the run trains to the same bits as a spawned run of the same split
// (2 workers x 1 thread). Skipped with the reason where mpirun is missing or cannot start a
// process here (it refuses root without --allow-run-as-root, which the script passes).
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "core_set.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"
#include "skip.h"

namespace fs = std::filesystem;
using ts::JsonNode;

namespace {

const std::string kScript = std::string(THREADSPLIT_SOURCE_DIR) + "/scripts/launch_mpi.sh";

// Runs `cmd` through the shell; its exit status, with stdout and stderr in `out`.
int run_shell(const std::string& cmd, std::string& out) {
  out.clear();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Why mpirun cannot run a test here, or "" when it can.
std::string why_no_mpirun() {
  std::string out;
  if (run_shell("command -v mpirun", out) != 0) return "mpirun is not installed (apt-get install openmpi-bin)";
  if (run_shell("mpirun --version", out) != 0 || out.find("Open MPI") == std::string::npos)
    return "the mpirun on PATH is not OpenMPI's (launch_mpi.sh needs its -x and --hostfile)";
  if (run_shell("mpirun --allow-run-as-root -np 1 true", out) != 0)
    return "mpirun cannot start a process here: " + out.substr(0, 400);
  return "";
}

// The CPUs of the physical core that holds `cpu` (its SMT siblings and itself).
ts::CoreSet core_of(int cpu) {
  const std::string path = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list";
  std::string text = ts_test::read_text(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? ts::CoreSet(std::vector<int>{cpu}) : ts::CoreSet::parse(text).sorted();
}

// Physical cores among the machine's online CPUs (mpirun binds across the whole machine).
size_t physical_cores() {
  std::string text = ts_test::read_text("/sys/devices/system/cpu/online");
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const ts::CoreSet online = ts::CoreSet::parse(text);
  std::set<std::string> cores;
  for (int i = 0; i < online.size(); ++i) cores.insert(core_of(online[i]).to_string());
  return cores.size();
}

ts::TrainingState spawned_run(const std::vector<std::string>& math, const std::string& tag) {
  const std::string ckpt = ts_test::tmp_dir() + "/" + tag + ".ckpt";
  ts_test::Process p = ts_test::start(
      tag, ts_test::coordinator_args(ts_test::with({"--procs", "2", "--threads", "1", "--save", ckpt}, math)));
  const int rc = ts_test::wait_exit(p, 300);
  INFO(tag << " stdout:\n" << p.out() << "\nstderr:\n" << p.err());
  REQUIRE(rc == 0);
  return ts::load_checkpoint(ckpt, ts::build_network("seed_cnn"));
}

}  // namespace

TEST_CASE("mpirun through launch_mpi.sh: ranks from OMPI_COMM_WORLD_RANK, the binding mpirun "
          "gave read back, and the same bits as spawned workers",
          "[integration][mpi]") {
  const std::string why = why_no_mpirun();
  if (!why.empty()) {
    ts_test::skip_test(why);
    return;
  }
  const std::string dir = ts_test::fresh_dir("mpi");
  const std::string hostfile = dir + "/hosts", wrapper = dir + "/worker.sh";
  std::ofstream(hostfile) << "localhost slots=2\n";
  // What mpirun gave each process, written before it becomes the worker (exec keeps the pid).
  std::ofstream(wrapper) << "#!/bin/sh\n"
                         << "echo \"$$ $(awk '/^Cpus_allowed_list/ {print $2}' /proc/$$/status)\" > "
                         << dir << "/rank.${OMPI_COMM_WORLD_RANK:-unset}\n"
                         << "exec " << THREADSPLIT_WORKER_BIN << " \"$@\"\n";
  fs::permissions(wrapper, fs::perms::owner_all);

  const std::vector<std::string> math = {"--model", "seed_cnn", "--steps", "20", "--batch", "128",
                                         "--seed", "11", "--eval-every", "0"};
  const std::string ckpt = dir + "/mpi.ckpt", report = dir + "/mpi.json";
  // overload-allowed: on a one-core machine --oversubscribe puts both workers on that core,
  // which mpirun's binding refuses otherwise. --threads 1: the spawned run's T, so the same
  // kernels sum in the same order (on an SMT core mpirun's binding holds two CPUs).
  ts_test::Process launch = ts_test::start(
      "mpi_launch",
      ts_test::with({kScript, "--hostfile", hostfile, "--worker-bin", wrapper, "--mpirun-args",
                     "--oversubscribe --bind-to core:overload-allowed", "--worker-args", "--threads 1",
                     "--data", ts_test::test_data_dir(), "--save", ckpt, "--report", report},
                    math),
      {"BUILD_DIR=" THREADSPLIT_BUILD_DIR, "THREADSPLIT_TOKEN=", "OMP_NUM_THREADS="});
  const int rc = ts_test::wait_exit(launch, 300);
  INFO("launch_mpi.sh stdout:\n" << launch.out() << "\nstderr:\n" << launch.err());
  REQUIRE(rc == 0);
  // The script read the port the coordinator listens on, and gave the workers a token.
  CHECK_THAT(launch.out(), Catch::Contains("waiting for 2 workers at 127.0.0.1:") &&
                               Catch::Contains("-x THREADSPLIT_TOKEN") && Catch::Contains("trained 20 steps"));

  const JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "completed");
  CHECK(r["config"]["external_workers"].num() == 2);
  CHECK(r["config"]["data_plane"].str() == "grpc");
  const JsonNode& workers = r["workers"];
  REQUIRE(workers.size() == 2);
  std::vector<ts::CoreSet> bound;
  for (size_t i = 0; i < 2; ++i) {
    const JsonNode& w = workers[i];
    const int rank = int(w["rank"].num());
    INFO("report worker " << i << ": rank " << rank << ", pid " << w["pid"].num() << ", cores " << w["cores"].str());
    CHECK(!w["spawned"].boolean());
    REQUIRE((rank == 0 || rank == 1));
    // The pid mpirun started as OMPI_COMM_WORLD_RANK=rank is the one the coordinator gave that rank.
    std::istringstream mpi(ts_test::read_text(dir + "/rank." + std::to_string(rank)));
    long pid = -1;
    std::string cpus;
    mpi >> pid >> cpus;
    INFO("mpirun's rank " << rank << ": pid " << pid << ", bound to " << cpus);
    CHECK(long(w["pid"].num()) == pid);
    REQUIRE(!cpus.empty());
    // The worker reports the binding mpirun set, read back, and one thread on it.
    const ts::CoreSet given = ts::CoreSet::parse(cpus).sorted();
    CHECK(ts::CoreSet::parse(w["cores"].str()).sorted().to_string() == given.to_string());
    CHECK(w["omp_threads"].num() == 1);
    for (size_t t = 0; t < w["omp_thread_cores"].size(); ++t)
      CHECK(ts::CoreSet::parse(w["omp_thread_cores"][t].str()).sorted().to_string() == given.to_string());
    // --bind-to core: one physical core (and its SMT siblings).
    CHECK(given.to_string() == core_of(given[0]).to_string());
    bound.push_back(given);
  }
  CHECK(int(workers[0]["rank"].num()) != int(workers[1]["rank"].num()));
  // Two cores for two workers where the machine has them; one shared core is oversubscription.
  if (physical_cores() >= 2) CHECK(bound[0].to_string() != bound[1].to_string());
  CHECK_FALSE(fs::exists(dir + "/rank.unset"));

  const ts::TrainingState external = ts::load_checkpoint(ckpt, ts::build_network("seed_cnn"));
  const ts::TrainingState spawned = spawned_run(math, "mpi_spawned");
  REQUIRE(external.params.size() == spawned.params.size());
  CHECK(external.params == spawned.params);
  REQUIRE(external.optimizer);
  REQUIRE(spawned.optimizer);
  REQUIRE(external.optimizer->slots.size() == spawned.optimizer->slots.size());
  for (size_t i = 0; i < external.optimizer->slots.size(); ++i) {
    INFO("slot " << external.optimizer->slots[i].name);
    CHECK(external.optimizer->slots[i].values == spawned.optimizer->slots[i].values);
  }
}

TEST_CASE("launch_mpi.sh refuses a bad hostfile, a missing mpirun and the flags it sets itself, "
          "by name, before it starts anything",
          "[integration][mpi]") {
  const std::string dir = ts_test::fresh_dir("mpi_usage");
  std::ofstream(dir + "/ok") << "localhost slots=2\n";
  std::ofstream(dir + "/empty") << "# no hosts yet\n\n";
  std::ofstream(dir + "/noslots") << "localhost\n";
  std::ofstream(dir + "/badslots") << "localhost slots=two\n";
  std::ofstream(dir + "/remote") << "node7 slots=4\n";
  const std::string env = "BUILD_DIR=" THREADSPLIT_BUILD_DIR " ";
  const struct {
    std::string args, message;
  } cases[] = {
      {"", "--hostfile FILE is required"},
      {"--hostfile " + dir + "/missing", "hostfile " + dir + "/missing does not exist"},
      {"--hostfile " + dir, "hostfile " + dir + " is not a readable file"},
      {"--hostfile " + dir + "/empty", "names no host"},
      {"--hostfile " + dir + "/noslots", "without slots=N, so the worker count is unknown: give --np N"},
      {"--hostfile " + dir + "/badslots", "line 1: slots must be a whole number, got 'two'"},
      {"--hostfile " + dir + "/remote", "names another host (node7): give --address HOST"},
      {"--hostfile " + dir + "/ok --np 0", "--np must be a whole number of workers, at least 1, got '0'"},
      {"--hostfile " + dir + "/ok --mpirun /nonexistent/mpirun", "/nonexistent/mpirun not found: install OpenMPI"},
      {"--hostfile " + dir + "/ok --port 5000", "--port is set by this script"},
      {"--hostfile " + dir + "/ok --external-workers=3", "--external-workers is set by this script"},
      {"--hostfile " + dir + "/ok --threads 2", "--threads is the coordinator's split of its own cores"},
      {"--hostfile " + dir + "/ok --hostfile", "--hostfile needs a value"},
  };
  for (const auto& c : cases) {
    std::string out;
    const int rc = run_shell(env + kScript + " " + c.args, out);
    INFO("launch_mpi.sh " << c.args << "\n" << out);
    CHECK(rc == 2);
    CHECK_THAT(out, Catch::Contains(c.message));
    CHECK_THAT(out, !Catch::Contains("waiting for"));  // no coordinator was started
  }
  std::string help;
  CHECK(run_shell(kScript + " --help", help) == 0);
  CHECK_THAT(help, Catch::Contains("--hostfile FILE") && Catch::Contains("mpirun --hostfile FILE -np N -x THREADSPLIT_TOKEN"));
}
