// The coordinator's command line: every flag, its default, and the checks that can be made
// before anything starts. Defaults follow the Keras example this project started from:
// Adam 1e-3, global batch 128, 3 epochs, last 10% of the training set for validation,
// no augmentation, seed_cnn.
//
// The flags are one CLI11 table (run_options_app, run_options.cpp; common/cli_flags.h): it
// parses, checks each number's range, and writes --help. validate_options checks what needs
// several flags, or code beyond the table (a known model, an augmentation, an optimizer).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "network.h"
#include "optimizer.h"
#include "usage_error.h"

namespace CLI {
class App;
}

namespace ts {

struct RunOptions {
  // The split. 0 = not given: chosen from the core list (see resolve_split).
  int procs = 0;
  int threads = 0;
  int inter_op = 1;               // teams per worker running ops at once (--inter-op I)
  std::string cores;              // empty: the cores this process may run on
  std::string placement = "numa";  // where workers go on the topology (common/placement.h)
  std::string smt = "avoid";       // hardware threads: physical cores first (avoid) or both (use)
  int external_workers = 0;       // hand-started workers to wait for (none spawned then)

  // Training.
  int epochs = 3;                 // whole epochs begun (--epochs rounded up)
  double epochs_exact = 0;        // --epochs with a fraction (airbench94: 9.9): the last epoch
                                  // stops after ceil(fraction x its steps); 0: whole epochs
  int batch = 128;                // global batch
  int batch_per_worker = 0;       // >0: fixed per-worker batch, global = P x this
  double lr = 1e-3;
  std::string optimizer = "adam";
  double momentum = 0.0;
  uint64_t seed = 1;
  std::string augment = "none";
  std::string model = "seed_cnn";
  std::string model_file;         // --model-file: an ONNX graph instead of a built-in net
  bool init_from_model = false;   // its initializers are the starting weights
  std::string export_onnx;        // --export-onnx: the trained model as an inference graph
  bool shuffle = true;
  int64_t steps = 0;              // >0: stop after this many global steps
  // >0: end this invocation after N steps while the schedule keeps the whole run's length
  // (--steps/--epochs): a slice of a run, continued with --init. --autotune's trials are.
  int64_t stop_after = 0;
  int eval_every = 1;             // validate every N epochs (and after the last)
  int eval_batch = 250;
  int loader_threads = 1;

  // The recipe's pieces (issue 11, airbench94). Each gets a flag; a model's recipe supplies
  // the value of every such flag not given on the command line (the older nets' recipes are
  // these defaults, so their math does not change).
  std::string precision = "f32";   // f32 | bf16: the worker's activations (master weights f32)
  double label_smoothing = 0;      // PyTorch's CrossEntropyLoss(label_smoothing)
  std::string loss = "mean";       // mean | sum: the gradient of the mean or the summed loss
  int bn_group = 0;                // samples per batch-norm group; 0: the network's own
  bool normalize = false;          // (x - CIFAR mean) / CIFAR std instead of x in [0, 1]
  int tta = 0;                     // test-time augmentation level of the final test round
  double validation_split = 0.1;   // share of the training records held out (0: none)
  bool drop_last = false;          // drop each epoch's last partial global batch
  double weight_decay = 0;         // SGD's, in the recipe's units (see common/optimizer.h)
  bool nesterov = false;
  double bias_lr_scale = 1;        // lr multiplier of batch-norm shifts
  std::string lr_schedule = "constant";  // constant | triangular (airbench's)
  int whiten_bias_epochs = 0;      // >0: the whitening bias is frozen after this many epochs
  int lookahead_every = 0;         // >0: lookahead EMA of the state every N steps (airbench's)

  // Files and network.
  std::string data;               // CIFAR-10 directory
  std::string report;             // JSON report path
  std::string init;               // checkpoint to start from
  std::string save;               // checkpoint to write at the end
  std::string listen = "127.0.0.1";
  int port = 0;                   // 0: any free port
  std::string port_file;          // write the chosen port here (for scripts and tests)
  std::string worker_bin;         // default: next to this executable
  double connect_timeout_s = 60;  // workers must join within this
  double step_timeout_s = 600;    // a worker silent this long during a step is dead
  std::string progress = "auto";  // auto (only on a tty), on, off
  std::string coordinator_priority = "auto";  // auto | realtime | normal (coordinator_priority.h)

  // Reliability (coordinator/step_deadline.h, common/checkpoint_store.h).
  std::string on_worker_failure = "abort";  // abort | continue
  double failure_grace_s = 3;     // a worker silent this long beyond the slowest recent step is lost
  int respawn = 0;                // lost spawned workers replaced, at most (coordinator/respawner.h)
  // Gradient buckets of at least this many KiB go up while backward still runs, and the
  // coordinator sums them as they arrive (common/gradient_buckets.h); 0: the whole gradient
  // after backward.
  int bucket_kb = 0;
  // How gradients and parameters travel: "shm" through a shared segment (spawned workers on
  // this host; common/shared_plane.h), "grpc" in the messages, "auto" shm where it can
  // (spawned workers, no --bucket-kb) and grpc otherwise.
  std::string data_plane = "auto";
  double max_grad_norm = 0;       // a share-gradient of a larger L2 norm is refused; 0: no bound
  std::string checkpoint_dir;     // rotated checkpoints go here
  std::string checkpoint_every;   // "K" steps or "Ne" epochs; empty: only at the end / on abort
  int checkpoint_keep = 3;        // newest checkpoints kept in checkpoint_dir
  bool resume = false;            // continue from the newest valid checkpoint in checkpoint_dir
  bool checkpoint_overwrite = false;  // a fresh run may replace another run's checkpoints there
  std::string tls_cert, tls_key, tls_ca;  // PEM files: serve TLS; with a CA, require client certs

  // Measurement (coordinator/step_timing.h, coordinator/sweep/autotune.h).
  int warmup_steps = 0;           // first N steps excluded from the report's "timed" figures
  std::string trace;              // Chrome trace-event JSON of every step
  // The exchange alone (bench/exchange_bench.sh): workers skip forward/backward and send a
  // known gradient of the model's size (common/exchange_only.h); no evaluation (eval_every 0).
  bool exchange_only = false;
  bool autotune = false;          // measure the splits first, train with the fastest
  std::string split_chosen_by;  // set after --autotune: why it chose --procs/--threads
  int autotune_steps = 0;         // timed steps of the first trials; 0: about 1 s worth
  int autotune_rounds = 8;        // most paired rounds of the last two splits
  double autotune_time_s = 120;   // no new round of trials after this
  double autotune_budget = 0.05;  // share of the planned run the choice may cost (net of the
                                  // trials' steps that count toward training)
  // Set by --autotune: its wall time, the trial steps that count toward the run, and the net
  // cost (the wall time less what those steps would have taken at the chosen split).
  double autotune_seconds = 0, autotune_cost_s = 0;
  int64_t autotune_trained_steps = 0;
  std::string autotune_scratch;   // its temporary directory, removed after the run

  // Flags given on the command line (their long names, "--lr"), so a model's recipe supplies
  // only the others (apply_model_recipe).
  std::vector<std::string> given;

  bool help = false;
};

// A model's recipe: the values its training uses for the flags the command line did not give
// (airbench94's: batch 1024, 9.9 epochs, Nesterov SGD with its lr, decay and schedule, label
// smoothing, normalization, its augmentation, no validation split, test-time augmentation...).
// seed_cnn and tf_tutorial_cnn have none: RunOptions' defaults are theirs. Called by
// parse_run_options; a caller that builds RunOptions itself calls it once after setting model.
void apply_model_recipe(RunOptions& o);

// airbench94's hyper-parameters in PyTorch's SGD units. The recipe gives lr 11.5 and weight
// decay 0.0153 "per 1024 examples" for a summed loss; with kilostep = 1024 (1 + 1/(1 - momentum)):
// lr = 11.5 / kilostep per step, and the per-step decay lr x weight_decay = 0.0153 x batch /
// kilostep, so PyTorch's weight_decay = 0.0153 x batch / 11.5 (batch-norm shifts, at
// lr x bias_lr_scale, get weight_decay / bias_lr_scale: the same decay per step).
struct RecipeSgd {
  double lr = 0, weight_decay = 0;
};
RecipeSgd airbench_sgd(double lr_per_1024, double decay_per_1024, double momentum, int batch);

// The optimizer these flags describe (--optimizer, --lr, --momentum, --nesterov,
// --weight-decay, --bias-lr-scale, --lr-schedule, --lookahead-every).
OptimizerConfig optimizer_config(const RunOptions& o);

// The flag table, bound to o (which must outlive it). `program` names it in --help's usage lines.
std::unique_ptr<CLI::App> run_options_app(RunOptions& o, const std::string& program);

// Parses argv[first..argc); -h/--help sets help. Throws UsageError naming the flag and the bad
// value (a number out of its range included).
RunOptions parse_run_options(int argc, char** argv, int first = 1);

// The --help text: every flag with its explanation, range and default.
std::string usage_text(const char* program);

// Checks what the table alone cannot: combinations of flags, --cores' syntax, and that
// --model, --augment and the optimizer flags name something this build has. Needs no files,
// cores or processes. Throws UsageError.
void validate_options(const RunOptions& o);

// The network the options name: --model's, or --model-file's graph (common/model_source.h).
// Throws UsageError naming the flag.
NetworkSpec network_of_options(const RunOptions& o);

// `threadsplit make-synthetic-data DIR [--seed N]` (argv[1] is "make-synthetic-data").
struct SyntheticDataOptions {
  std::string dir;
  uint64_t seed = 1;
  bool help = false;
};
std::unique_ptr<CLI::App> synthetic_data_app(SyntheticDataOptions& o, const std::string& program);
SyntheticDataOptions parse_synthetic_data_options(int argc, char** argv);  // throws UsageError
std::string synthetic_data_usage_text(const char* program);

}  // namespace ts
