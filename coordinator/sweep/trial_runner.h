// Runs one measured training run as a child process (this same program, so the trial is
// exactly what a user would run) and reads its report back. Used by the sweep and by
// --autotune. Every trial is a fresh coordinator with fresh workers: nothing warm is shared.
#pragma once
#include <string>
#include <vector>

#include "sweep_report.h"

namespace ts {

// This executable (/proc/self/exe).
std::string self_executable();

struct TrialRun {
  std::vector<std::string> args;   // after the program name; --report is added
  std::string report_path;         // where the child writes its report
  std::string log_path;            // its stdout and stderr
  double timeout_s = 600;          // killed after this (its workers die with it)
};

TrialFigures run_trial(const std::string& exe, const TrialRun& t);

// The flags of one sweep point (the data, cores, seed and extras are the caller's).
std::vector<std::string> point_args(const SweepPoint& p);

}  // namespace ts
