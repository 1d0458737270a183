// The run report (--report FILE): the configuration, each worker's effective binding as it
// read it back, per-epoch metrics with per-phase times per worker, the machine and the
// library versions. Written atomically (temporary file, then rename).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "training_run.h"

namespace ts {


// The configuration as a JSON object (also stored in checkpoints).
std::string config_json(const RunSetup& setup);

struct ReportInputs {
  const RunSetup* setup = nullptr;
  const TrainingRun* run = nullptr;            // null when the run never started
  std::optional<EvalOutcome> test;
  std::string status = "completed";        // or "failed", "diverged" (RunDiverged), or
                                           // "interrupted" (a stop signal)
  std::string error;
  std::string signal;                      // "SIGTERM" when a stop signal ended the run
  double wall_seconds = 0;
  int coordinator_threads = 0;
  std::string coordinator_scheduling;  // coordinator_priority.h
  std::vector<std::string> refusals;    // the first TrainerService::kKeptRefusals
  int64_t refusals_total = 0;           // all of them; the report adds a line counting the rest
};

// Throws std::runtime_error naming the file when it cannot be written.
void write_run_report(const std::string& path, const ReportInputs& in);

}  // namespace ts
