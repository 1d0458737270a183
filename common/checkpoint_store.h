// A directory of rotated checkpoints for one run's lineage: "step-<12 digits>.ckpt".
// Each file is written by save_checkpoint (temporary file, fsync, rename, CRC-32), so a crash
// leaves either the old set or the new one; resume takes the newest file that passes every
// check and names each damaged one it skipped.
//
// Every checkpoint carries the lineage id of the run that wrote it (a fresh run draws one,
// --resume keeps the one it resumed). Rotation deletes only files of this store's lineage,
// never the file it just wrote, and never a file whose lineage it cannot read: a second run
// pointed at the same directory cannot delete the first run's checkpoints. (The coordinator
// also refuses to start a fresh run in a directory that holds checkpoints: run_setup.cpp.)
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

  // The lineage whose files this store writes and rotates (empty: files written before
  // lineages existed, which resume may continue).
  void set_lineage(std::string lineage) { lineage_ = std::move(lineage); }
  const std::string& lineage() const { return lineage_; }

  // Writes the state (its lineage set to this store's) as the checkpoint of state.step, then
  // keeps the file just written and the newest keep-1 other files of this lineage, deleting
  // the rest of this lineage's files. Returns the path written. Throws CheckpointError.
  std::string save(const NetworkSpec& net, const TrainingState& state, const Optimizer* optimizer);

  // Checkpoint files in the directory (any lineage), highest step first.
  std::vector<std::string> list() const;

  // Each checkpoint file with the lineage it names, or why it could not be read.
  struct Entry {
    std::string path;
    int64_t step = 0;                    // from the file name
    std::optional<std::string> lineage;  // absent: unreadable
    std::string problem;
  };
  std::vector<Entry> survey() const;

  // Deletes every checkpoint file not of this store's lineage (readable or not); returns the
  // paths deleted.
  std::vector<std::string> remove_other_lineages();
  // --checkpoint-overwrite: the next successful save() also removes the other lineages'
  // files (after this run's own file is safely written); take_removed() then lists them.
  void replace_others_after_next_save() { replace_others_ = true; }
  std::vector<std::string> take_removed() { return std::move(removed_); }

  struct Loaded {
    std::string path;
    TrainingState state;
  };
  // The newest checkpoint that loads; each one skipped is described in *skipped (file and
  // why). Empty when none loads. Throws CheckpointError when loadable files of more than one
  // lineage are present: which run to continue is then the user's call, not ours.
  std::optional<Loaded> load_newest(const NetworkSpec& net, std::vector<std::string>* skipped) const;

 private:
  std::string dir_;
  int keep_;
  std::string lineage_;
  bool replace_others_ = false;
  std::vector<std::string> removed_;
};

// "lineage 3f2a...", or "no lineage (written before lineages existed)": for messages.
std::string describe_lineage(const std::string& lineage);

}  // namespace ts
