#include "omp_setup.h"

#include <unistd.h>

#include <cerrno>
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

void reexec_with_omp_threads(int threads, char** argv) {
  if (threads <= 0) throw std::invalid_argument("--threads must be at least 1");
  const std::string want = std::to_string(threads);
  if (env_or_empty("OMP_NUM_THREADS") == want && !env_or_empty("OMP_PROC_BIND").empty() &&
      !env_or_empty("OMP_PLACES").empty())
    return;
  // Grows its mask past 1024 CPUs and throws rather than return nothing (an empty
  // OMP_PLACES would fail the check above after every exec, forever).
  const CoreSet cpus = CoreSet::of_this_process();
  if (threads > cpus.size())
    std::fprintf(stderr,
                 "warning: %d OpenMP threads on %d allowed cores is oversubscription: threads "
                 "will time-share cores, and every barrier waits for a descheduled thread\n",
                 threads, cpus.size());
  setenv("OMP_NUM_THREADS", want.c_str(), 1);
  setenv("OMP_PROC_BIND", "close", 1);
  setenv("OMP_PLACES", cpus.omp_places().c_str(), 1);
  execv("/proc/self/exe", argv);
  throw std::runtime_error(std::string("could not re-execute with OMP_NUM_THREADS set: ") +
                           std::strerror(errno));
}

std::string omp_environment_summary() {
  return "OMP_NUM_THREADS=" + env_or_empty("OMP_NUM_THREADS") +
         " OMP_PROC_BIND=" + env_or_empty("OMP_PROC_BIND") +
         " OMP_PLACES=" + env_or_empty("OMP_PLACES");
}

}  // namespace ts
