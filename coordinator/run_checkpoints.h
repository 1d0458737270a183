// When the coordinator writes checkpoints: every --checkpoint-every K steps (or N epochs with
// "Ne") into --checkpoint-dir, and at the end of every run, failed runs included: into the
// directory, to --save, and when a failed run has neither, to ./threadsplit-abort-<run>.ckpt,
// so an abort never loses the steps already done.
#pragma once
#include <string>
#include <vector>

#include "checkpoint_store.h"
#include "training_run.h"

namespace ts {

TrainingState snapshot_state(const RunSetup& setup, const TrainingRun& run);

// Installs the --checkpoint-every hook on `run`. A checkpoint that cannot be written stops
// the run (RunAborted): going on would silently lose the protection asked for.
void schedule_checkpoints(TrainingRun& run, const RunSetup& setup, CheckpointStore& store);

// Writes the end-of-run checkpoints; prints one line per file, saying when the state is the
// last good one of a run that failed or diverged, or where a stop signal stopped it
// (`stopped_by`: "SIGTERM"). `written`, when given, receives the paths written. False when
// one could not be written.
bool write_final_checkpoints(const RunSetup& setup, const TrainingRun& run, CheckpointStore* store,
                             bool failed, bool diverged = false, const std::string& stopped_by = "",
                             std::vector<std::string>* written = nullptr);

}  // namespace ts
