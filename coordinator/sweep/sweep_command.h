// `threadsplit sweep`: measures every process x thread split of a core budget (and, on request,
// under- and over-subscribed ones and several loader thread counts) for each model and batch
// mode, R interleaved repeats each, and writes sweep.csv, sweep.json and the printed summary.
// scripts/sweep.sh wraps it and draws sweep.png from the JSON.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "sweep_plan.h"
#include "usage_error.h"

namespace CLI {
class App;
}

namespace ts {

struct SweepArgs {
  SweepOptions sweep;
  std::string data, out = "sweep-results", cores, worker_bin;
  std::string placement = "numa", smt = "avoid";  // every trial's (common/placement.h)
  uint64_t seed = 1;
  double trial_timeout_s = 600;
  double busy_share = 0.2;   // a trial with more foreign CPU than this is run again ...
  int busy_retries = 1;      // ... at most this many times
  bool help = false;
};

// The sweep's flag table (common/cli_flags.h), bound to a (which must outlive it).
std::unique_ptr<CLI::App> sweep_app(SweepArgs& a);

// argv[1] is "sweep"; -h/--help sets help. Throws UsageError naming the flag.
SweepArgs parse_sweep_args(int argc, char** argv);

// The --help text: every flag with its explanation, range and default.
std::string sweep_usage_text();

// argv[1] is "sweep". Returns the exit status.
int sweep_main(int argc, char** argv);

}  // namespace ts
