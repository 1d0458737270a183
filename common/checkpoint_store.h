// A directory of rotated checkpoints for one run: "step-<12 digits>.ckpt", newest kept.
// Each file is written by save_checkpoint (temporary file, fsync, rename, CRC-32), so a crash
// leaves either the old set or the new one; resume takes the newest file that passes every
// check and names each damaged one it skipped.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint.h"

namespace ts {

class CheckpointStore {
 public:
  // Creates `dir` (one level) when missing. Throws CheckpointError when it cannot.
  CheckpointStore(std::string dir, int keep);

  const std::string& dir() const { return dir_; }
  std::string path_for(int64_t step) const;

  // Writes the state as the checkpoint of state.step, then deletes all but the newest `keep`.
  // Returns the path written. Throws CheckpointError.
  std::string save(const NetworkSpec& net, const TrainingState& state, const Optimizer* optimizer);

  // Checkpoint files in the directory, newest (highest step) first.
  std::vector<std::string> list() const;

  struct Loaded {
    std::string path;
    TrainingState state;
  };
  // The newest checkpoint that loads; each one skipped is described in *skipped (file and
  // why). Empty when none loads.
  std::optional<Loaded> load_newest(const NetworkSpec& net, std::vector<std::string>* skipped) const;

 private:
  std::string dir_;
  int keep_;
};

}  // namespace ts
