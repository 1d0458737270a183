// threadsplit_worker's command line: its CLI11 flag table (common/cli_flags.h). Header-only so
// that the unit tests can walk the same table the worker parses with.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>

#include "cli_flags.h"

namespace ts {

// What the flags say; worker_main.cpp copies it into a WorkerConfig (step_loop.h), whose
// defaults these are.
struct WorkerFlags {
  std::string coordinator;        // HOST:PORT; required
  int rank = -1;                  // -1: from the environment, else the coordinator assigns one
  int threads = 0;                // 0: as the environment says
  int inter_op = 0;               // 0: as the environment says (THREADSPLIT_INTER_OP, else 1)
  std::string data_dir;           // empty: the coordinator's path
  double connect_timeout_s = 60;
  bool help = false;
};

inline std::unique_ptr<CLI::App> worker_app(WorkerFlags& f) {
  auto app = cli::new_app(
      "threadsplit_worker",
      "usage: threadsplit_worker --coordinator HOST:PORT [--rank N] [--threads T] [--inter-op I]\n"
      "                          [--data DIR] [--connect-timeout S]\n",
      "One data-parallel worker. The run token comes from the environment (THREADSPLIT_TOKEN), "
      "never the command line.");
  app->footer("TLS: THREADSPLIT_TLS_CA=PEM checks the coordinator's certificate; "
              "THREADSPLIT_TLS_CERT and THREADSPLIT_TLS_KEY add a client certificate (coordinators "
              "started with --tls-ca).");
  CLI::App& a = *app;
  cli::group(a, "Flags");
  a.add_option("--coordinator", f.coordinator, "where the coordinator listens; required")
      ->type_name("HOST:PORT");
  a.add_option("--rank", f.rank,
               "this worker's rank (default: THREADSPLIT_RANK, OMPI_COMM_WORLD_RANK, PMI_RANK or "
               "SLURM_PROCID; else the coordinator assigns one)")
      ->type_name("N")->transform(cli::at_least(0));
  a.add_option("--threads", f.threads,
               "OpenMP threads (re-executes with OMP_* set); 0: as the environment says")
      ->type_name("T")->transform(cli::at_least(0, 4096))->capture_default_str();
  a.add_option("--inter-op", f.inter_op,
               "teams of T threads running ops at once, each on its own cores (re-executes with "
               "OMP_PROC_BIND=false and THREADSPLIT_INTER_OP set; T defaults to cores / I); must "
               "match the coordinator's --inter-op; 0: as the environment says")
      ->type_name("I")->transform(cli::at_least(0, 4096))->capture_default_str();
  a.add_option("--data", f.data_dir, "this host's CIFAR-10 copy (default: the coordinator's path)")
      ->type_name("DIR");
  a.add_option("--connect-timeout", f.connect_timeout_s,
               "give up when the coordinator cannot be reached within S seconds")
      ->type_name("S")->transform(cli::positive())->capture_default_str();
  cli::add_help(a, "Flags");
  return app;
}

// A rank from a launcher's environment (THREADSPLIT_RANK, OMPI_COMM_WORLD_RANK, PMI_RANK,
// SLURM_PROCID): a whole number in 0..2147483647, else std::invalid_argument naming the
// variable, the range and what it held (no wrap-around: 4294967297 is refused, not rank 1).
inline int parse_rank_variable(const std::string& name, const std::string& value) {
  const std::string range = " must be a rank in 0.." + std::to_string(cli::kIntMax);
  size_t i = 0;
  while (i < value.size() && value[i] >= '0' && value[i] <= '9') ++i;
  if (value.empty() || i != value.size())
    throw std::invalid_argument(name + range + ", got '" + value.substr(0, 64) +
                                "': unset it, or let --rank say which rank this worker is");
  std::string digits = value.substr(value.find_first_not_of('0') == std::string::npos
                                        ? value.size() - 1 : value.find_first_not_of('0'));
  if (digits.size() > 10 || std::stoll(digits) > cli::kIntMax)
    throw std::invalid_argument(name + range + ", got " + value.substr(0, 64) +
                                ": unset it, or let --rank say which rank this worker is");
  return int(std::stoll(digits));
}

// argv[1..argc); -h/--help sets help. Throws UsageError naming the flag.
inline WorkerFlags parse_worker_flags(int argc, char** argv) {
  WorkerFlags f;
  const auto app = worker_app(f);
  f.help = !cli::parse(*app, argc, argv, 1);
  if (!f.help && f.coordinator.empty()) throw UsageError("--coordinator HOST:PORT is required");
  return f;
}

}  // namespace ts
