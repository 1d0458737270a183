// --autotune: before training, trials of every split P x T = N of the run's cores, chosen by
// successive halving (every split once, then the faster half with trials twice as long, ...)
// down to two, which then meet in paired rounds (paired_stats.h) until one is really faster,
// the two are a measured tie, or the budget is spent; then the highest median wins.
//
// The trials are slices of the run itself where the math allows: each one is this program
// with the user's own flags (so the math is the run's), started from the previous trial's
// checkpoint (--init) and ended after its steps (--stop-after) while the schedule keeps the
// whole run's length. With a fixed global batch every split computes the same steps (up to
// float summation order), so those steps count toward training and the run continues from
// the last trial's checkpoint: the choice costs the trials' start-up and the steps run at a
// slower split, not the trials' length. Where the run is too short for that (the trials would
// take more than half of it) or its global batch depends on P (--batch-per-worker), trials
// start from the run's own start and are all cost.
//
// The budget (--autotune-budget, a share of the planned run's time) bounds that net cost;
// every split gets one trial regardless, and --autotune-time caps the wall time.
#pragma once
#include <string>
#include <vector>

#include "run_options.h"
#include "sweep_report.h"

namespace ts {

struct AutotuneChoice {
  int procs = 0, threads = 0, inter_op = 1;
  std::string reason;                  // printed, and kept for the report
  std::vector<PointResult> results;    // every candidate's figures
  // When the trials were slices of the run: the last one's checkpoint (the run goes on from
  // it with --init) and the steps they trained.
  std::string continue_from;
  int64_t trained_steps = 0;
  double seconds = 0;                  // wall time of the whole choice
  double cost_s = 0;                   // seconds less the trained steps at the chosen split
  double planned_run_s = 0;            // the run's estimated time at the chosen split
  std::string scratch_dir;             // the trials' directory (the caller removes it)
};

// `args`: the run's command line after the program name, as given (the trials run it with
// their own split, slice and files). Throws std::runtime_error when no candidate completed a
// trial, StopRequested when a stop signal came (the trial in flight was passed it and has
// stopped).
AutotuneChoice autotune(const RunOptions& o, const std::string& exe, const std::vector<std::string>& args);

// The choice given the figures so far: the group summary of the candidates (one model, one
// batch mode). Exposed for tests.
GroupSummary autotune_pick(const std::vector<PointResult>& results);

// The user's flags without those a trial sets itself (split, slice, files, autotune, resume,
// evaluation, progress): "--flag value" and "--flag=value" forms alike. Exposed for tests.
std::vector<std::string> trial_base_args(const std::vector<std::string>& args);

// Successive halving's survivors: the ceil(n/2) fastest by images/s in this rung (at least 2
// while more than 2 remain), in ranking order. Exposed for tests.
std::vector<int> halve(const std::vector<std::pair<int, double>>& rung_ips);

}  // namespace ts
