#include "omp_setup.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "core_set.h"

namespace ts {
namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

void reexec_with_omp_threads(int threads, char** argv, int inter_op) {
  if (threads <= 0) throw std::invalid_argument("--threads must be at least 1");
  if (inter_op <= 0) throw std::invalid_argument("--inter-op must be at least 1");
  const std::string want = std::to_string(threads);
  const std::string bind = inter_op > 1 ? "false" : "close";
  const std::string lanes = inter_op > 1 ? std::to_string(inter_op) : "";
  if (env_or_empty("OMP_NUM_THREADS") == want && env_or_empty("OMP_PROC_BIND") == bind &&
      !env_or_empty("OMP_PLACES").empty() && env_or_empty("THREADSPLIT_INTER_OP") == lanes)
    return;
  // Grows its mask past 1024 CPUs and throws rather than return nothing (an empty
  // OMP_PLACES would fail the check above after every exec, forever).
  const CoreSet cpus = CoreSet::of_this_process();
  if (int64_t(threads) * inter_op > cpus.size())
    std::fprintf(stderr,
                 "warning: %d OpenMP threads on %d allowed cores is oversubscription: threads "
                 "will time-share cores, and every barrier waits for a descheduled thread\n",
                 threads * inter_op, cpus.size());
  setenv("OMP_NUM_THREADS", want.c_str(), 1);
  setenv("OMP_PROC_BIND", bind.c_str(), 1);
  if (inter_op > 1) setenv("THREADSPLIT_INTER_OP", lanes.c_str(), 1);
  else unsetenv("THREADSPLIT_INTER_OP");
  setenv("OMP_PLACES", cpus.omp_places().c_str(), 1);
  execv("/proc/self/exe", argv);
  throw std::runtime_error(std::string("could not re-execute with OMP_NUM_THREADS set: ") +
                           std::strerror(errno));
}

int inter_op_from_environment() {
  const std::string v = env_or_empty("THREADSPLIT_INTER_OP");
  if (v.empty()) return 1;
  size_t i = 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  const long n = (i == v.size() && i <= 4) ? std::strtol(v.c_str(), nullptr, 10) : -1;
  if (n < 1 || n > 4096)
    throw std::invalid_argument("THREADSPLIT_INTER_OP must be a whole number of teams in 1..4096, "
                                "got '" + v.substr(0, 64) + "': unset it, or start the worker with "
                                "--inter-op I");
  if (n > 1 && env_or_empty("OMP_PROC_BIND") != "false")
    throw std::invalid_argument("THREADSPLIT_INTER_OP=" + v + " needs OMP_PROC_BIND=false (got '" +
                                env_or_empty("OMP_PROC_BIND").substr(0, 64) +
                                "'): libgomp would bind every team from the first place, so the "
                                "teams would share cores; start the worker with --inter-op " + v +
                                " (it sets both)");
  return int(n);
}

std::string omp_environment_summary() {
  return "OMP_NUM_THREADS=" + env_or_empty("OMP_NUM_THREADS") +
         " OMP_PROC_BIND=" + env_or_empty("OMP_PROC_BIND") +
         " OMP_PLACES=" + env_or_empty("OMP_PLACES");
}

}  // namespace ts
