// Everything decided and checked before the first worker starts or a port opens: the split
// (P, T and each worker's cores), the global batch, the data set, the files the run will
// write, the starting point (fresh, --init or --resume) and the run's token and id.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint_store.h"
#include "cifar10.h"
#include "core_set.h"
#include "epoch_plan.h"
#include "network.h"
#include "shared_plane.h"
#include "optimizer.h"
#include "placement.h"
#include "run_options.h"

namespace ts {

// Everything decided before the first worker starts.
struct RunSetup {
  RunOptions options;
  NetworkSpec net;
  std::string model_onnx;             // --model-file's bytes (the Welcome carries them), or empty
  int world_size = 1;
  int threads = 1;                    // per op (an inter-op team) of a local worker
  int inter_op = 1;                   // teams per worker (--inter-op)
  CoreSet cores;                      // the run's core list (local workers)
  std::vector<CoreSet> worker_cores;  // by rank; empty for hand-started workers
  Topology machine;                   // this machine as hwloc sees it (local workers)
  Topology topology;                  // `machine` restricted to `cores`
  PlacementPlan placement;            // where each local worker goes (common/placement.h)
  bool oversubscribed = false;
  std::string data_plane = "grpc";    // as decided from --data-plane: "shm" or "grpc"
  std::string split_reason;           // how P and T were chosen
  int global_batch = 128;
  int granule = 1;                    // shares are dealt in whole multiples (NetworkSpec::sample_granule)
  int steps_per_epoch = 0;
  int last_epoch_steps = 0;           // --epochs with a fraction: the last epoch's steps; 0: all
  int64_t schedule_steps = 0;         // the global step at which training ends (lr schedule, lookahead)
  OptimizerConfig optimizer;
  DataSplit split;
  std::string data_dir;               // absolute
  bool synthetic_data = false;
  std::string data_fingerprint;       // Cifar10::fingerprint, compared with each worker's
  std::string run_id;
  std::string lineage;                // of its checkpoints: this run's id, or the resumed run's
  std::string token;
  std::string config_json;            // for checkpoints and the report
};

// A run ready to start: its setup and where training begins.
struct Prepared {
  RunSetup setup;
  std::vector<float> params;
  std::unique_ptr<Optimizer> optimizer;
  int64_t step = 0, epoch = 0, step_in_epoch = 0;
  std::string worker_bin;
  std::optional<CheckpointStore> store;  // --checkpoint-dir
  bool nothing_left = false;             // --resume found the run already at --steps or --epochs
  bool replace_other_checkpoints = false;  // --checkpoint-overwrite, and there were some
  std::shared_ptr<SharedPlane> plane;    // setup.data_plane "shm": the segment, made before the spawn
};

// Throws UserError (one sentence: what is wrong and what to do) for anything that cannot
// work, before any process starts.
Prepared prepare(const RunOptions& o);

}  // namespace ts
