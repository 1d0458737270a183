// Checkpoints: the model's parameters and the optimizer's slots as named tensors in PyTorch's
// layouts (proto/checkpoint.proto), plus the counters a run needs to resume where it stopped.
// Written to a temporary file and renamed, so a crash never leaves a torn checkpoint; read
// back only after every check passed (CRC-32, model, every tensor's name, shape and size).
// scripts/read_checkpoint.py reads the same files from Python.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "network.h"
#include "optimizer.h"
#include "user_error.h"

namespace threadsplit {
class OptimizerState;
}

namespace ts {

constexpr uint32_t kCheckpointFormatVersion = 1;

// A checkpoint could not be written or read; the message names the file and the problem.
class CheckpointError : public UserError {
 public:
  using UserError::UserError;
};

struct TrainingState {
  std::string model;           // network name; empty on save means the network's
  int64_t step = 0;            // global steps completed
  int64_t epoch = 0;           // epochs completed
  int64_t step_in_epoch = 0;   // steps completed in the current epoch
  uint64_t seed = 0;
  std::vector<float> params;   // the flat buffer, NetworkSpec::num_params floats
  std::optional<OptimizerSnapshot> optimizer;  // absent when the checkpoint has none
  std::string config_json;
  // The run this state belongs to: drawn by a fresh run, kept by --resume; a checkpoint
  // store rotates only its own lineage's files. Empty in files written before lineages.
  std::string lineage;
};

// Writes `state` to `path` atomically: "<path>.tmp.<pid>" is written, flushed and fsynced,
// renamed over `path`, and the directory is fsynced. The optimizer's state is taken from
// `optimizer` when given, else from state.optimizer when set, else none is written.
// Throws std::invalid_argument when the state does not fit `net` (a caller's mistake), and
// CheckpointError when the file cannot be written; an existing file at `path` is then left
// as it was and no temporary file is left behind.
void save_checkpoint(const std::string& path, const NetworkSpec& net, const TrainingState& state,
                     const Optimizer* optimizer = nullptr);

// Reads a checkpoint written for network `expect`. Throws CheckpointError naming the file
// and what is wrong: missing or unreadable, not a checkpoint, damaged (CRC-32 mismatch),
// unsupported format_version, another model, a tensor missing, unexpected, of another shape
// or with the wrong number of bytes, a parameter or optimizer slot holding a non-finite value
// (named: tensor and element), or optimizer state that does not fit. Resume with
//   auto opt = make_optimizer(config, net.num_params);
//   if (state.optimizer) opt->restore(*state.optimizer);
TrainingState load_checkpoint(const std::string& path, const NetworkSpec& expect);

// What a checkpoint file says about itself, read without checking it against a network:
// enough to tell whose it is. Throws CheckpointError when the file cannot be read or parsed.
struct CheckpointLabel {
  std::string model;
  int64_t step = 0;
  std::string lineage;
};
CheckpointLabel read_checkpoint_label(const std::string& path);

// CRC-32 (IEEE 802.3, zlib's crc32()) of a serialized checkpoint: the value its crc32 field
// holds, computed over the message serialized with that field absent.
uint32_t checkpoint_crc32(const std::string& bytes);

// The optimizer's state as named slot tensors "<param name>/<slot>" (e.g. "conv1.weight/m")
// with the parameter's shape, slots grouped per parameter in the network's order.
void export_optimizer_state(const OptimizerSnapshot& snapshot, const NetworkSpec& net,
                            threadsplit::OptimizerState* out);

// The inverse of export_optimizer_state. The slot names tell what the settings do not: a
// "momentum_buffer" slot sets config.nesterov, a "lookahead" slot config.lookahead_every (to 1:
// the interval is the resuming run's). Throws std::invalid_argument when the config is
// invalid or a slot tensor is missing, unexpected, of another shape or size.
OptimizerSnapshot import_optimizer_state(const threadsplit::OptimizerState& state,
                                         const NetworkSpec& net);

}  // namespace ts
