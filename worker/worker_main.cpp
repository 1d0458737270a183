// threadsplit_worker: one data-parallel worker. Spawned by the coordinator (bound to its cores,
// token in the environment), or started by hand:
//   THREADSPLIT_TOKEN=... threadsplit_worker --coordinator HOST:PORT [--threads T]
// taking its rank from OMPI_COMM_WORLD_RANK / PMI_RANK / SLURM_PROCID when a launcher set one.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "omp_setup.h"
#include "malloc_tuning.h"
#include "process_facts.h"
#include "step_loop.h"

namespace {

const char* kUsage =
    "usage: threadsplit_worker --coordinator HOST:PORT [--rank N] [--threads T] [--data DIR]\n"
    "                          [--connect-timeout S]\n"
    "The run token comes from the environment (THREADSPLIT_TOKEN), never the command line.\n"
    "  --coordinator HOST:PORT  where the coordinator listens (required)\n"
    "  --rank N                 this worker's rank (default: THREADSPLIT_RANK, OMPI_COMM_WORLD_RANK,\n"
    "                           PMI_RANK or SLURM_PROCID; else the coordinator assigns one)\n"
    "  --threads T              OpenMP threads (re-executes with OMP_* set; default: as the\n"
    "                           environment says)\n"
    "  --data DIR               this host's CIFAR-10 copy (default: the coordinator's path)\n"
    "  --connect-timeout S      give up when the coordinator cannot be reached (default 60)\n"
    "TLS: THREADSPLIT_TLS_CA=PEM checks the coordinator's certificate; THREADSPLIT_TLS_CERT and\n"
    "THREADSPLIT_TLS_KEY add a client certificate (coordinators started with --tls-ca).\n";

int parse_int(const std::string& flag, const char* v) {
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (!*v || *end) throw std::invalid_argument(flag + " expects a whole number, got '" + v + "'");
  return int(x);
}

}  // namespace

int main(int argc, char** argv) {
  ts::keep_freed_memory();
  ts::WorkerConfig c;
  int threads = 0;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> const char* {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "--coordinator") c.coordinator = value();
      else if (a == "--rank") c.rank = parse_int(a, value());
      else if (a == "--threads") threads = parse_int(a, value());
      else if (a == "--data") c.data_dir = value();
      else if (a == "--connect-timeout") c.connect_timeout_s = std::atof(value());
      else if (a == "--help" || a == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else {
        throw std::invalid_argument("unknown argument '" + a + "' (see --help)");
      }
    }
    if (c.coordinator.empty()) throw std::invalid_argument("--coordinator HOST:PORT is required");
    if (threads < 0) throw std::invalid_argument("--threads must be at least 1");
    if (!(c.connect_timeout_s > 0)) throw std::invalid_argument("--connect-timeout must be positive");
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
          c.rank = parse_int(var, v);
          break;
        }
      }
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "threadsplit_worker: %s\n", e.what());
    return 2;
  }
  // Before anything starts OpenMP: a hand-started worker asked for T threads re-executes
  // itself with the OMP_* environment set, as the coordinator's launcher would have.
  if (threads > 0) ts::reexec_with_omp_threads(threads, argv);
  return ts::run_worker(c);
}
