#include "run_options.h"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include "augment.h"
#include "cli_flags.h"
#include "core_set.h"
#include "network.h"
#include "optimizer.h"

namespace ts {

namespace {

using cli::at_least;
using cli::kInt64Max;
using cli::positive;

// --checkpoint-every: K steps, or Ne epochs.
CLI::Validator steps_or_epochs() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const bool epochs = !v.empty() && v.back() == 'e';
        const std::string n = epochs ? v.substr(0, v.size() - 1) : v;
        errno = 0;
        char* end = nullptr;
        const long long k = n.empty() ? 0 : std::strtoll(n.c_str(), &end, 10);
        if (n.empty() || *end != '\0' || errno == ERANGE || k < 1)
          return "expects a step count K or Ne for epochs, got '" + v + "'";
        return std::string();
      },
      std::string());
}

}  // namespace

std::unique_ptr<CLI::App> run_options_app(RunOptions& o, const std::string& program) {
  const std::string& p = program;
  auto app = cli::new_app(
      p,
      "usage: " + p + " [flags]\n" +
      "       " + p + " sweep --data DIR [flags]   (measures every split; sweep --help)\n" +
      "       " + p + " make-synthetic-data DIR [--seed N]\n",
      "Trains a CNN on CIFAR-10 with P worker processes of T OpenMP threads each, gradients "
      "averaged over gRPC. For a fixed global batch and seed the result does not depend on P or "
      "T, so splits can be compared by speed alone. SIGINT (Ctrl-C), SIGTERM or SIGHUP stop the "
      "run after the current step with a final checkpoint and report, exit 128 + signo; a "
      "second one stops at once (docs/reliability.md, Signals). Exit status: 0 done, 1 failed "
      "(a worker lost under abort, an output not written), 2 bad flags or files, 4 the run "
      "diverged (non-finite loss, gradient or state), 128 + signo stopped by a signal.");
  CLI::App& a = *app;
  // Numbers go through ->transform(): see cli_flags.h. default_str(""): 0 means "not given",
  // and a given value must be a real count.
  cli::group(a, "The split (default: 1 worker using every core this process may run on)");
  a.add_option("--procs", o.procs, "worker processes (default: cores / T, or 1)")
      ->type_name("P")->transform(at_least(1, 1024))->default_str("");
  a.add_option("--threads", o.threads, "OpenMP threads per worker (default: cores / P)")
      ->type_name("T")->transform(at_least(1, 4096))->default_str("");
  a.add_option("--cores", o.cores, "cores to split, e.g. 0-3,8 (default: this process's affinity)")
      ->type_name("LIST");
  a.add_option("--external-workers", o.external_workers,
               "spawn nothing; wait for N hand-started threadsplit_worker processes (token in "
               "THREADSPLIT_TOKEN); 0: spawn them")
      ->type_name("N")->transform(at_least(0))->capture_default_str();

  cli::group(a, "Training");
  a.add_option("--epochs", o.epochs, "passes over the training records")
      ->type_name("N")->transform(at_least(1))->capture_default_str();
  a.add_option("--batch", o.batch, "global batch")
      ->type_name("B")->transform(at_least(1, 50000))->capture_default_str();
  a.add_option("--batch-per-worker", o.batch_per_worker,
               "fix the per-worker batch instead; global = P x B; 0: --batch decides")
      ->type_name("B")->transform(at_least(0, 50000))->capture_default_str();
  a.add_option("--optimizer", o.optimizer, "Adam, or SGD (with --momentum)")->type_name("adam|sgd")->capture_default_str();
  a.add_option("--lr", o.lr, "learning rate")
      ->type_name("X")->transform(positive())->capture_default_str();
  a.add_option("--momentum", o.momentum, "SGD momentum")
      ->type_name("X")->transform(cli::real_in(0, 1, true))->capture_default_str();
  a.add_option("--seed", o.seed, "initialization, shuffles, augmentation")
      ->type_name("N")->transform(at_least(0, kInt64Max))->capture_default_str();
  a.add_option("--augment", o.augment, "training images: as stored, mirrored at random, or also cropped at random")->type_name("none|flip|flip,crop")->capture_default_str();
  a.add_option("--model", o.model, "the network (common/network.h)")->type_name("seed_cnn|tf_tutorial_cnn")->capture_default_str();
  a.add_flag_callback("--no-shuffle", [&o] { o.shuffle = false; },
                      "visit the training records in file order");
  a.add_option("--steps", o.steps, "stop after N global steps (with --init: N more than the "
               "checkpoint's; with --resume: N from step 0); 0: no step limit, train all --epochs")
      ->type_name("N")->transform(at_least(0, kInt64Max))->capture_default_str();
  a.add_option("--eval-every", o.eval_every,
               "validate every N epochs and after the last, test at the end; 0: no evaluation at all")
      ->type_name("N")->transform(at_least(0))->capture_default_str();
  a.add_option("--eval-batch", o.eval_batch, "evaluation chunk per worker")
      ->type_name("N")->transform(at_least(1))->capture_default_str();
  a.add_option("--loader-threads", o.loader_threads, "loader threads per worker")
      ->type_name("N")->transform(at_least(1, 64))->capture_default_str();

  cli::group(a, "Files");
  a.add_option("--data", o.data, "CIFAR-10 binary version (cifar-10-batches-bin); required")
      ->type_name("DIR");
  a.add_option("--init", o.init, "start a new run from this checkpoint: its parameters, its "
               "optimizer state when the optimizer is the same, its position when the epoch plan is")
      ->type_name("CKPT");
  a.add_option("--save", o.save, "write a checkpoint at the end (and when a run aborts)")
      ->type_name("CKPT");
  a.add_option("--report", o.report, "write the run report (JSON)")->type_name("FILE");

  cli::group(a, "Network and processes");
  a.add_option("--listen,--bind", o.listen,
               "address to listen on; anything but loopback admits other hosts")
      ->type_name("HOST")->capture_default_str();
  a.add_option("--port", o.port, "port; 0 picks a free one")
      ->type_name("N")->transform(cli::in_range(0, 65535))->capture_default_str();
  a.add_option("--port-file", o.port_file, "write the chosen port to FILE")->type_name("FILE");
  a.add_option("--worker-bin", o.worker_bin, "threadsplit_worker to spawn (default: beside this program)")
      ->type_name("PATH");
  a.add_option("--connect-timeout", o.connect_timeout_s,
               "workers must join within S seconds; a connection that sends no Hello within S "
               "seconds is closed")
      ->type_name("S")->transform(positive())->capture_default_str();
  a.add_option("--step-timeout", o.step_timeout_s, "a worker silent for S seconds is dead")
      ->type_name("S")->transform(positive())->capture_default_str();
  a.add_option("--progress", o.progress, "live progress bar; auto: only on a terminal")
      ->type_name("auto|on|off")->check(cli::one_of({"auto", "on", "off"}))->capture_default_str();
  a.add_option("--coordinator-priority", o.coordinator_priority,
               "run the coordinator's training thread SCHED_FIFO (it is on every step's critical "
               "path; workers stay normal): auto where permitted, realtime or fail, normal never")
      ->type_name("auto|realtime|normal")
      ->check(cli::one_of({"auto", "realtime", "normal"}))->capture_default_str();
  a.add_option("--tls-cert", o.tls_cert, "serve TLS with this certificate (and --tls-key)")
      ->type_name("PEM");
  a.add_option("--tls-key", o.tls_key, "the private key of --tls-cert")->type_name("PEM");
  a.add_option("--tls-ca", o.tls_ca, "also require workers to present a certificate signed by it")
      ->type_name("PEM");

  cli::group(a, "Failures and checkpoints");
  a.add_option("--on-worker-failure", o.on_worker_failure,
               "abort: final checkpoint, exit 1; continue: re-deal the rest of the epoch among the "
               "survivors")
      ->type_name("abort|continue")->check(cli::one_of({"abort", "continue"}))->capture_default_str();
  a.add_option("--failure-grace", o.failure_grace_s,
               "a worker silent S seconds beyond the slowest recent step is lost")
      ->type_name("S")->transform(positive(3600))->capture_default_str();
  a.add_option("--respawn", o.respawn,
               "replace a lost spawned worker on its freed cores, at most N times in the run; the "
               "replacement joins at the next step with the current parameters (needs "
               "--on-worker-failure continue; not with --external-workers)")
      ->type_name("N")->transform(at_least(0))->capture_default_str();
  a.add_option("--max-grad-norm", o.max_grad_norm,
               "refuse a worker's gradient of L2 norm above X as an outlier (that worker is lost: "
               "--on-worker-failure applies). Each worker's gradient is its share of the batch-mean "
               "gradient (about 1/P of it), so X bounds a share; off by default")
      ->type_name("X")->transform(positive());
  a.add_option("--checkpoint-dir", o.checkpoint_dir,
               "write rotated checkpoints here (and the abort checkpoint)")
      ->type_name("DIR");
  a.add_option("--checkpoint-every", o.checkpoint_every, "every K steps, or Ne for every N epochs")
      ->type_name("K|Ne")->check(steps_or_epochs());
  a.add_option("--checkpoint-keep", o.checkpoint_keep, "keep the newest N")
      ->type_name("N")->transform(at_least(1))->capture_default_str();
  a.add_flag("--resume", o.resume,
             "continue the run whose checkpoints are in --checkpoint-dir from its newest valid one, "
             "with the same settings (a change to one that alters the math is refused: use --init); "
             "--steps then counts from step 0, as in the interrupted run");
  a.add_flag("--checkpoint-overwrite", o.checkpoint_overwrite,
             "let a fresh run use a --checkpoint-dir that holds another run's checkpoints: they are "
             "deleted once this run has written its first one");

  cli::group(a, "Measuring");
  a.add_option("--warmup-steps", o.warmup_steps, "leave the first N steps out of the report's timed figures")
      ->type_name("N")->transform(at_least(0))->capture_default_str();
  a.add_option("--trace", o.trace,
               "Chrome trace-event JSON: each worker's phases per step and the coordinator's "
               "reduce/update (chrome://tracing, ui.perfetto.dev)")
      ->type_name("FILE");
  a.add_flag("--autotune", o.autotune,
             "first measure every split P x T = cores in short trials, then train with the "
             "fastest (give neither --procs nor --threads)");
  a.add_option("--autotune-steps", o.autotune_steps, "timed steps per trial; 0: about 2 s worth")
      ->type_name("N")->transform(at_least(0))->capture_default_str();
  a.add_option("--autotune-rounds", o.autotune_rounds, "most trials per split")
      ->type_name("N")->transform(at_least(1))->capture_default_str();
  a.add_option("--autotune-time", o.autotune_time_s, "start no new round of trials after S seconds")
      ->type_name("S")->transform(positive())->capture_default_str();
  cli::add_help(a, "Measuring");
  return app;
}

RunOptions parse_run_options(int argc, char** argv, int first) {
  RunOptions o;
  const auto app = run_options_app(o, "threadsplit");
  o.help = !cli::parse(*app, argc, argv, first);
  return o;
}

std::string usage_text(const char* program) {
  RunOptions defaults;
  return run_options_app(defaults, program)->help();
}

// --respawn replaces processes this coordinator started, under the continue policy only.
static void validate_respawn(const RunOptions& o) {
  if (o.respawn == 0) return;
  if (o.on_worker_failure != "continue")
    throw UsageError("--respawn " + std::to_string(o.respawn) + " needs --on-worker-failure continue "
                     "(under abort a lost worker ends the run, so there is nothing to replace)");
  if (o.external_workers > 0)
    throw UsageError("--respawn replaces workers this coordinator spawned; hand-started workers "
                     "(--external-workers) cannot be restarted by it: drop one of the two");
}

void validate_options(const RunOptions& o) {
  if (!o.cores.empty()) {
    try {
      CoreSet::parse(o.cores);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--cores: ") + e.what());
    }
  }
  if (o.external_workers > 0 && (o.procs > 0 || o.threads > 0 || !o.cores.empty()))
    throw UsageError("--external-workers replaces --procs/--threads/--cores: hand-started "
                     "workers bring their own binding");
  try {
    build_network(o.model);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--model: ") + e.what());
  }
  try {
    parse_augment(o.augment);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--augment: ") + e.what());
  }
  OptimizerConfig optimizer;
  optimizer.kind = o.optimizer;
  optimizer.learning_rate = o.lr;
  optimizer.momentum = o.momentum;
  try {
    optimizer.validate();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (o.optimizer == "adam" && o.momentum != 0)
    throw UsageError("--momentum applies to --optimizer sgd only (Adam has its own moments)");
  if (!o.checkpoint_every.empty() && o.checkpoint_dir.empty())
    throw UsageError("--checkpoint-every needs --checkpoint-dir DIR");
  if (o.resume && o.checkpoint_dir.empty()) throw UsageError("--resume needs --checkpoint-dir DIR");
  if (o.resume && !o.init.empty()) throw UsageError("--resume and --init both name a starting point: give one");
  if (o.checkpoint_overwrite && o.checkpoint_dir.empty())
    throw UsageError("--checkpoint-overwrite needs --checkpoint-dir DIR");
  if (o.checkpoint_overwrite && o.resume)
    throw UsageError("--checkpoint-overwrite is for a fresh run; --resume continues the run already in "
                     "--checkpoint-dir: give one");
  if (o.tls_cert.empty() != o.tls_key.empty())
    throw UsageError("--tls-cert and --tls-key go together");
  if (!o.tls_ca.empty() && o.tls_cert.empty())
    throw UsageError("--tls-ca needs --tls-cert and --tls-key (the coordinator's own identity)");
  if (o.steps > 0 && o.warmup_steps >= o.steps)
    throw UsageError("--warmup-steps " + std::to_string(o.warmup_steps) + " leaves none of --steps " +
                     std::to_string(o.steps) + " to time");
  if (o.autotune && (o.procs > 0 || o.threads > 0 || o.external_workers > 0))
    throw UsageError("--autotune chooses the split itself: give neither --procs, --threads nor "
                     "--external-workers with it");
  validate_respawn(o);
  if (o.data.empty()) throw UsageError("--data DIR is required (the CIFAR-10 binary version; "
                                       "scripts/train.sh finds or fetches it)");
}

std::unique_ptr<CLI::App> synthetic_data_app(SyntheticDataOptions& o, const std::string& program) {
  auto app = cli::new_app(program + " make-synthetic-data",
                          "usage: " + program + " make-synthetic-data DIR [--seed N]\n",
                          "Writes a generated data set shaped like CIFAR-10's binary version into "
                          "DIR: speed numbers on it are real, accuracies mean nothing.");
  cli::group(*app, "Arguments and flags");
  app->add_option("DIR", o.dir, "the directory to write (created if missing)");
  app->add_option("--seed", o.seed, "the generator's seed")
      ->type_name("N")->transform(at_least(0, kInt64Max))->capture_default_str();
  cli::add_help(*app, "Arguments and flags");
  return app;
}

SyntheticDataOptions parse_synthetic_data_options(int argc, char** argv) {
  SyntheticDataOptions o;
  const auto app = synthetic_data_app(o, "threadsplit");
  o.help = !cli::parse(*app, argc, argv, 2);
  if (!o.help && o.dir.empty())
    throw UsageError("DIR is required: threadsplit make-synthetic-data DIR [--seed N]");
  return o;
}

std::string synthetic_data_usage_text(const char* program) {
  SyntheticDataOptions defaults;
  return synthetic_data_app(defaults, program)->help();
}

}  // namespace ts
