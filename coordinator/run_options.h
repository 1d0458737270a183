// The coordinator's command line: every flag, its default, and the checks that can be made
// before anything starts. Defaults follow the Keras example this project started from:
// Adam 1e-3, global batch 128, 3 epochs, last 10% of the training set for validation,
// no augmentation, seed_cnn.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ts {

// A bad command line; the message is one sentence for the user.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunOptions {
  // The split. 0 = not given: chosen from the core list (see resolve_split).
  int procs = 0;
  int threads = 0;
  std::string cores;              // empty: the cores this process may run on
  int external_workers = 0;       // hand-started workers to wait for (none spawned then)

  // Training.
  int epochs = 3;
  int batch = 128;                // global batch
  int batch_per_worker = 0;       // >0: fixed per-worker batch, global = P x this
  double lr = 1e-3;
  std::string optimizer = "adam";
  double momentum = 0.0;
  uint64_t seed = 1;
  std::string augment = "none";
  std::string model = "seed_cnn";
  bool shuffle = true;
  int64_t steps = 0;              // >0: stop after this many global steps
  int eval_every = 1;             // validate every N epochs (and after the last)
  int eval_batch = 250;
  int loader_threads = 1;

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
  std::string checkpoint_dir;     // rotated checkpoints go here
  std::string checkpoint_every;   // "K" steps or "Ne" epochs; empty: only at the end / on abort
  int checkpoint_keep = 3;        // newest checkpoints kept in checkpoint_dir
  bool resume = false;            // continue from the newest valid checkpoint in checkpoint_dir
  std::string tls_cert, tls_key, tls_ca;  // PEM files: serve TLS; with a CA, require client certs

  // Measurement (coordinator/step_timing.h, coordinator/sweep/autotune.h).
  int warmup_steps = 0;           // first N steps excluded from the report's "timed" figures
  std::string trace;              // Chrome trace-event JSON of every step
  bool autotune = false;          // measure the splits first, train with the fastest
  std::string split_chosen_by;  // set after --autotune: why it chose --procs/--threads
  int autotune_steps = 0;         // timed steps per trial; 0: about 2 s worth
  int autotune_rounds = 4;        // most trials per split
  double autotune_time_s = 120;   // no new round of trials after this

  bool help = false;
};

// Parses argv[first..argc). Throws UsageError naming the flag and the bad value.
RunOptions parse_run_options(int argc, char** argv, int first = 1);

// The --help text: every flag with its default.
std::string usage_text(const char* program);

// Checks ranges and combinations that need no files. Throws UsageError.
void validate_options(const RunOptions& o);

}  // namespace ts
