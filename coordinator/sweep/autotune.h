// --autotune: before training, short trials of every split P x T = N of the run's cores, in
// interleaved rounds, until the best split's slowest repeat beats every other's fastest (at
// least two rounds), or the rounds or the time cap run out; then the highest median wins.
// The trials are child runs of this program with the run's own model, batch, data and loader
// settings, so they measure what the training will do.
#pragma once
#include <string>
#include <vector>

#include "run_options.h"
#include "sweep_report.h"

namespace ts {

struct AutotuneChoice {
  int procs = 0, threads = 0;
  std::string reason;                  // printed, and kept for the report
  std::vector<PointResult> results;    // every candidate's figures
};

// Throws std::runtime_error when no candidate completed a trial, StopRequested when a stop
// signal came (stop_signals.h; the trial in flight was passed it and has stopped).
AutotuneChoice autotune(const RunOptions& o, const std::string& exe);

// The choice given the figures so far: the group summary of the candidates (one model, one
// batch mode). Exposed for tests.
GroupSummary autotune_pick(const std::vector<PointResult>& results);

}  // namespace ts
