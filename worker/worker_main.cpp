// threadsplit_worker: one data-parallel worker. Spawned by the coordinator (bound to its cores,
// token in the environment), or started by hand:
//   THREADSPLIT_TOKEN=... threadsplit_worker --coordinator HOST:PORT [--threads T] [--inter-op I]
// taking its rank from OMPI_COMM_WORLD_RANK / PMI_RANK / SLURM_PROCID when a launcher set one.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core_set.h"
#include "omp_setup.h"
#include "malloc_tuning.h"
#include "memory_policy.h"
#include "process_facts.h"
#include "step_loop.h"
#include "worker_flags.h"

int main(int argc, char** argv) {
  ts::keep_freed_memory();
  ts::WorkerConfig c;
  int threads = 0, inter_op = 0;
  try {
    const ts::WorkerFlags f = ts::parse_worker_flags(argc, argv);
    if (f.help) {
      ts::WorkerFlags defaults;
      std::fputs(ts::worker_app(defaults)->help().c_str(), stdout);
      return 0;
    }
    c.coordinator = f.coordinator;
    c.rank = f.rank;
    c.data_dir = f.data_dir;
    c.connect_timeout_s = f.connect_timeout_s;
    threads = f.threads;
    inter_op = f.inter_op;
    const char* token = std::getenv("THREADSPLIT_TOKEN");
    if (!token || !*token)
      throw std::invalid_argument("THREADSPLIT_TOKEN is not set: the coordinator's run token must "
                                  "be in the environment");
    c.token = token;
    if (const char* id = std::getenv("THREADSPLIT_RUN_ID")) c.run_id = id;
    if (const char* v = std::getenv("THREADSPLIT_TLS_CA")) c.tls.ca = v;
    if (const char* v = std::getenv("THREADSPLIT_TLS_CERT")) c.tls.cert = v;
    if (const char* v = std::getenv("THREADSPLIT_TLS_KEY")) c.tls.key = v;
    if (c.rank < 0) {
      for (const char* var : {"THREADSPLIT_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"}) {
        if (const char* v = std::getenv(var)) {
          c.rank = ts::parse_rank_variable(var, v);
          break;
        }
      }
    }
  } catch (const ts::UsageError& e) {
    std::fprintf(stderr, "threadsplit_worker: %s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {  // the token or a rank in the environment
    std::fprintf(stderr, "threadsplit_worker: %s\n", e.what());
    return 2;
  }
  // Before anything starts OpenMP: a hand-started worker asked for T threads re-executes
  // itself with the OMP_* environment set, as the coordinator's launcher would have.
  if (inter_op > 1 && threads == 0)
    threads = std::max(1, ts::CoreSet::of_this_process().size() / inter_op);
  if (threads > 0) ts::reexec_with_omp_threads(threads, argv, std::max(1, inter_op));
  try {
    c.inter_op = ts::inter_op_from_environment();
    if (const char* fd = std::getenv("THREADSPLIT_SHM_FD")) c.shm_fd = ts::parse_rank_variable("THREADSPLIT_SHM_FD", fd);
    // Before this worker allocates anything large, and before its threads start: they inherit
    // the policy (common/placement.h decided it).
    const std::string refused = ts::apply_memory_policy_from_environment();
    if (!refused.empty()) std::fprintf(stderr, "threadsplit_worker: warning: %s\n", refused.c_str());
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "threadsplit_worker: %s\n", e.what());
    return 2;
  }
  return ts::run_worker(c);
}
