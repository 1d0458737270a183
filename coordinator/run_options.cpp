#include "run_options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "augment.h"
#include "cli_flags.h"
#include "core_set.h"
#include "model_source.h"
#include "network.h"
#include "optimizer.h"
#include "placement.h"

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

// airbench94's augmentation (common/augment.h): its alternating flip and 2-pixel translation.
constexpr const char* kAirbenchAugment = "flip-alt,translate2";

}  // namespace

std::unique_ptr<CLI::App> run_options_app(RunOptions& o, const std::string& program) {
  const std::string& p = program;
  auto app = cli::new_app(
      p,
      "usage: " + p + " [flags]\n" +
      "       " + p + " sweep --data DIR [flags]   (measures every split; sweep --help)\n" +
      "       " + p + " placement [flags]          (where the workers of a split go; placement --help)\n" +
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
  a.add_option("--procs", o.procs, "worker processes (default: cores / (I x T), or 1)")
      ->type_name("P")->transform(at_least(1, 1024))->default_str("");
  a.add_option("--threads", o.threads, "OpenMP threads per op (default: cores / (P x I))")
      ->type_name("T")->transform(at_least(1, 4096))->default_str("");
  a.add_option("--inter-op", o.inter_op,
               "ops running at once inside each worker, each on its own team of T threads and "
               "cores (the share split into I micro-batches; P x I x T = cores)")
      ->type_name("I")->transform(at_least(1, 4096))->capture_default_str();
  a.add_option("--bucket-kb", o.bucket_kb,
               "send each step's gradient in buckets of at least N KiB (whole layers, last layer "
               "first) as soon as backward finishes them; the coordinator sums them as they arrive, "
               "in rank order (the same bits). 0: the whole gradient after backward")
      ->type_name("N")->transform(at_least(0, 1 << 20))->capture_default_str();
  a.add_option("--data-plane", o.data_plane,
               "how gradients and parameters travel: shm (a shared segment; spawned workers on "
               "this host), grpc (inside the messages), auto (shm where it can: spawned workers "
               "without --bucket-kb)")
      ->type_name("auto|shm|grpc")->capture_default_str();
  a.add_option("--cores", o.cores, "cores to split, e.g. 0-3,8 (default: this process's affinity)")
      ->type_name("LIST");
  a.add_option("--placement", o.placement,
               "where the workers go on the machine's topology (hwloc): numa (balanced over "
               "sockets and NUMA nodes, each worker inside one node and one L3 where it fits, its "
               "memory bound to that node), compact (in topology order) or spread (evenly spaced)")
      ->type_name("numa|compact|spread")->capture_default_str();
  a.add_option("--smt", o.smt,
               "hardware threads: avoid (one thread per physical core; siblings only past the "
               "physical cores, said) or use (a worker takes both threads of a core)")
      ->type_name("avoid|use")->capture_default_str();
  a.add_option("--external-workers", o.external_workers,
               "spawn nothing; wait for N hand-started threadsplit_worker processes (token in "
               "THREADSPLIT_TOKEN); 0: spawn them")
      ->type_name("N")->transform(at_least(0))->capture_default_str();

  cli::group(a, "Training");
  a.add_option("--epochs", o.epochs_exact,
               "passes over the training records; a fraction ends the last one early (9.9: the "
               "tenth epoch stops after ceil(0.9 x its steps))")
      ->type_name("X")->transform(cli::real_at_least(1, 1e6))->default_str(std::to_string(o.epochs));
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
  a.add_option("--model", o.model,
               "the network (common/network.h); its recipe (docs/airbench94.md) supplies every "
               "training flag not given")
      ->type_name("seed_cnn|tf_tutorial_cnn|airbench94")->capture_default_str();
  a.add_option("--model-file", o.model_file,
               "train this ONNX model (PyTorch's torch.onnx.export, Keras through tf2onnx) instead "
               "of --model: its graph is mapped onto the engine's layers, or refused by node "
               "(docs/onnx.md); its weights are initialized as PyTorch initializes them, or")
      ->type_name("FILE.onnx");
  a.add_flag("--init-from-model", o.init_from_model,
             "... start from the model file's initializers (every parameter must have one)");
  a.add_option("--export-onnx", o.export_onnx,
               "write the trained model as an ONNX inference graph (batch norm in eval form) at the end")
      ->type_name("FILE.onnx");
  a.add_flag_callback("--no-shuffle", [&o] { o.shuffle = false; },
                      "visit the training records in file order");
  a.add_option("--steps", o.steps, "stop after N global steps (with --init: N more than the "
               "checkpoint's; with --resume: N from step 0); 0: no step limit, train all --epochs")
      ->type_name("N")->transform(at_least(0, kInt64Max))->capture_default_str();
  a.add_option("--stop-after", o.stop_after,
               "end this run after N steps while the schedule keeps the whole run's length "
               "(--steps, --epochs): a slice of it, continued with --init; 0: no slice")
      ->type_name("N")->transform(at_least(0, kInt64Max))->capture_default_str();
  a.add_option("--eval-every", o.eval_every,
               "validate every N epochs and after the last, test at the end; 0: no evaluation at all")
      ->type_name("N")->transform(at_least(0))->capture_default_str();
  a.add_option("--eval-batch", o.eval_batch, "evaluation chunk per worker")
      ->type_name("N")->transform(at_least(1))->capture_default_str();
  a.add_option("--loader-threads", o.loader_threads, "loader threads per worker")
      ->type_name("N")->transform(at_least(1, 64))->capture_default_str();

  cli::group(a, "The recipe (airbench94's defaults in docs/airbench94.md; the others' are these)");
  a.add_option("--precision", o.precision,
               "the workers' convolutions and activations: f32, or bf16 where the CPU has "
               "avx512_bf16 or AMX (master weights, batch-norm statistics, loss, optimizer f32)")
      ->type_name("f32|bf16")->check(cli::one_of({"f32", "bf16"}))->capture_default_str();
  a.add_option("--label-smoothing", o.label_smoothing, "PyTorch's CrossEntropyLoss(label_smoothing)")
      ->type_name("X")->transform(cli::real_in(0, 1, true))->capture_default_str();
  a.add_option("--loss", o.loss, "the gradient of the batch's mean loss, or of the summed loss")
      ->type_name("mean|sum")->check(cli::one_of({"mean", "sum"}))->capture_default_str();
  a.add_option("--bn-group", o.bn_group,
               "samples per batch-norm statistics group (shares are dealt in whole groups, so the "
               "math is the same for every split); 0: the network's own")
      ->type_name("G")->transform(at_least(0, 50000))->capture_default_str();
  a.add_flag("--normalize,!--no-normalize", o.normalize,
             "images as (x - CIFAR-10 mean) / std per channel instead of x in [0, 1]");
  a.add_option("--tta", o.tta,
               "test-time augmentation of the final test round: 0 none, 1 mirror, 2 mirror and "
               "1-pixel translations (airbench's weights)")
      ->type_name("0|1|2")->transform(cli::in_range(0, 2))->capture_default_str();
  a.add_option("--validation-split", o.validation_split,
               "share of the training records held out for validation (Keras' validation_split: "
               "the last ones); 0: train on all 50,000, epoch lines show test accuracy")
      ->type_name("X")->transform(cli::real_in(0, 1, true))->capture_default_str();
  a.add_flag("--drop-last,!--keep-last", o.drop_last,
             "drop each epoch's last partial global batch (every step the same batch)");
  a.add_option("--weight-decay", o.weight_decay,
               "SGD: PyTorch's weight_decay (L2 added to the gradient) of weights and biases; "
               "batch-norm shifts get X / --bias-lr-scale, the same decay per step")
      ->type_name("X")->transform(cli::real_in(0, 1e6))->capture_default_str();
  a.add_flag("--nesterov,!--no-nesterov", o.nesterov, "SGD: Nesterov momentum (PyTorch's form)");
  a.add_option("--bias-lr-scale", o.bias_lr_scale, "SGD: the learning rate of batch-norm shifts, x X")
      ->type_name("X")->transform(positive(1e6))->capture_default_str();
  a.add_option("--lr-schedule", o.lr_schedule,
               "the learning rate per step: constant, or triangular (x0.2 rising to x1 at 23% of "
               "the steps, then down to x0.07 at the last: airbench's)")
      ->type_name("constant|triangular")->check(cli::one_of({"constant", "triangular"}))
      ->capture_default_str();
  a.add_option("--whiten-bias-epochs", o.whiten_bias_epochs,
               "train the bias of the frozen whitening convolution for the first N epochs only; "
               "0: always")
      ->type_name("N")->transform(at_least(0))->capture_default_str();
  a.add_option("--lookahead-every", o.lookahead_every,
               "every N steps, move the state to an exponential average of itself (airbench's "
               "lookahead, decay 0.95^5 x (step/steps)^3); 0: off")
      ->type_name("N")->transform(at_least(0))->capture_default_str();

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
  a.add_flag("--exchange-only", o.exchange_only,
             "measure the exchange alone: workers build no model, load no data and compute "
             "nothing; each step they send a gradient of the model's size (every float a tiny "
             "known value, so the checks pass and the optimizer runs as usual) and install the "
             "parameters sent back. No evaluation rounds and no test round (--eval-every is 0); "
             "not with the flags that only shape the compute (bench/exchange_bench.sh)");
  a.add_flag("--autotune", o.autotune,
             "first measure every split P x T = cores (successive halving, then paired rounds of "
             "the last two; the trials are the run's first steps where it is long enough), then "
             "train with the fastest (give neither --procs nor --threads)");
  a.add_option("--autotune-steps", o.autotune_steps,
               "timed steps of the first trials (doubling per halving); 0: about 1 s worth")
      ->type_name("N")->transform(at_least(0))->capture_default_str();
  a.add_option("--autotune-rounds", o.autotune_rounds,
               "most paired rounds of the last two splits (the budget may end them sooner)")
      ->type_name("N")->transform(at_least(1))->capture_default_str();
  a.add_option("--autotune-time", o.autotune_time_s, "start no new round of trials after S seconds")
      ->type_name("S")->transform(positive())->capture_default_str();
  a.add_option_function<std::string>(
       "--autotune-budget",
       [&o](const std::string& v) {
         const bool percent = !v.empty() && v.back() == '%';
         size_t used = 0;
         double x = -1;
         try {
           x = std::stod(percent ? v.substr(0, v.size() - 1) : v, &used);
         } catch (const std::exception&) {
           used = 0;
         }
         if (used != v.size() - (percent ? 1 : 0) || !(x > 0) || (percent ? x > 100 : x > 1))
           throw std::invalid_argument("--autotune-budget: '" + v + "' is not a share of the run: give e.g. 5% or 0.05");
         o.autotune_budget = percent ? x / 100 : x;
       },
       "the most the choice may cost, as a share of the planned run's time (trial steps that "
       "count toward training are not a cost); every split gets one trial regardless")
      ->type_name("X%")->default_str("5%");
  cli::add_help(a, "Measuring");
  return app;
}

RunOptions parse_run_options(int argc, char** argv, int first) {
  RunOptions o;
  const auto app = run_options_app(o, "threadsplit");
  o.help = !cli::parse(*app, argc, argv, first);
  for (const CLI::Option* opt : app->get_options())
    if (opt->count() > 0)
      for (const std::string& name : opt->get_lnames()) o.given.push_back("--" + name);
  if (o.epochs_exact > 0) {
    // Whole numbers stay whole epochs; a fraction begins one more epoch and ends it early.
    o.epochs = int(std::ceil(o.epochs_exact));
    if (double(o.epochs) == o.epochs_exact) o.epochs_exact = 0;
  }
  if (!o.model_file.empty()) {
    // The run's model name says which file, and which bytes (model_source.h); a file that
    // cannot be read is refused by validate_options.
    try {
      o.model = onnx_model_name(o.model_file, read_model_file(o.model_file));
    } catch (const std::invalid_argument&) {
      o.model = "onnx:" + o.model_file;
    }
  }
  apply_model_recipe(o);
  // Nothing to evaluate: the workers build no model.
  if (o.exchange_only && std::find(o.given.begin(), o.given.end(), "--eval-every") == o.given.end())
    o.eval_every = 0;
  return o;
}

RecipeSgd airbench_sgd(double lr_per_1024, double decay_per_1024, double momentum, int batch) {
  const SgdHyper h = recipe_sgd(lr_per_1024, decay_per_1024, momentum, batch);
  return {h.learning_rate, h.weight_decay / h.learning_rate};  // PyTorch's weight_decay: per lr
}

OptimizerConfig optimizer_config(const RunOptions& o) {
  OptimizerConfig c;
  c.kind = o.optimizer;
  c.learning_rate = o.lr;
  c.momentum = o.momentum;
  c.nesterov = o.nesterov;
  // --weight-decay is PyTorch's coefficient; the optimizer takes the decay per step lr x wd.
  c.weight_decay = o.lr * o.weight_decay;
  c.bias_lr_scale = o.bias_lr_scale;
  c.lr_schedule = o.lr_schedule;
  c.lookahead_every = o.lookahead_every;
  return c;
}

void apply_model_recipe(RunOptions& o) {
  if (!o.model_file.empty()) {
    // A model file with batch norm drops each epoch's last, partial batch unless told (its
    // statistics groups must be whole, as airbench94's recipe does); a file that cannot be
    // read or mapped is refused by validate_options.
    const bool given = std::find(o.given.begin(), o.given.end(), "--drop-last") != o.given.end() ||
                       std::find(o.given.begin(), o.given.end(), "--keep-last") != o.given.end();
    try {
      if (!given && network_for(o.model, read_model_file(o.model_file)).sample_granule() > 1) o.drop_last = true;
    } catch (const std::invalid_argument&) {
    }
    return;
  }
  if (o.model != "airbench94") return;
  auto given = [&o](const char* flag) {
    return std::find(o.given.begin(), o.given.end(), flag) != o.given.end();
  };
  auto set = [&](const char* flag, auto& field, auto value) {
    if (!given(flag)) field = value;
  };
  set("--batch", o.batch, 1024);
  if (!given("--epochs")) {
    o.epochs = 10;
    o.epochs_exact = 9.9;
  }
  set("--optimizer", o.optimizer, std::string("sgd"));
  set("--momentum", o.momentum, 0.85);
  // lr 11.5 and decay 0.0153 per 1024 examples, at this run's batch and momentum.
  const RecipeSgd sgd = airbench_sgd(11.5, 0.0153, o.momentum, o.batch);
  set("--lr", o.lr, sgd.lr);
  set("--weight-decay", o.weight_decay, sgd.weight_decay);
  set("--nesterov", o.nesterov, true);
  set("--bias-lr-scale", o.bias_lr_scale, 64.0);
  set("--lr-schedule", o.lr_schedule, std::string("triangular"));
  set("--label-smoothing", o.label_smoothing, 0.2);
  set("--loss", o.loss, std::string("sum"));
  set("--normalize", o.normalize, true);
  set("--augment", o.augment, std::string(kAirbenchAugment));
  set("--validation-split", o.validation_split, 0.0);
  set("--drop-last", o.drop_last, true);
  set("--whiten-bias-epochs", o.whiten_bias_epochs, 3);
  set("--lookahead-every", o.lookahead_every, 5);
  set("--tta", o.tta, 2);
}

std::string usage_text(const char* program) {
  RunOptions defaults;
  return run_options_app(defaults, program)->help();
}

// --exchange-only leaves the workers' compute out, so the flags that only shape it (or the
// evaluation it skips) would be silently ignored: they are refused instead.
static void validate_exchange_only(const RunOptions& o) {
  if (!o.exchange_only) return;
  auto given = [&o](const char* flag) {
    return std::find(o.given.begin(), o.given.end(), flag) != o.given.end();
  };
  if (o.eval_every > 0)
    throw UsageError("--exchange-only runs no evaluation (the workers have no model): drop --eval-every " +
                     std::to_string(o.eval_every) + " or give --eval-every 0");
  for (const char* flag : {"--eval-batch", "--tta", "--augment", "--loader-threads", "--precision",
                           "--label-smoothing", "--normalize"})
    if (given(flag))
      throw UsageError(std::string("--exchange-only skips the workers' compute, so ") + flag +
                       " would change nothing: drop it (or drop --exchange-only to train)");
  if (o.autotune)
    throw UsageError("--autotune with --exchange-only would choose a split by the exchange alone, "
                     "not by training: give --procs and --threads instead");
}

// --respawn replaces processes this coordinator started, under the continue policy only.
static void validate_data_plane(const RunOptions& o) {
  if (o.data_plane != "auto" && o.data_plane != "shm" && o.data_plane != "grpc")
    throw UsageError("--data-plane must be auto, shm or grpc, got '" + o.data_plane.substr(0, 64) + "'");
  if (o.data_plane != "shm") return;
  if (o.external_workers > 0)
    throw UsageError("--data-plane shm needs spawned workers (they inherit the segment); hand-started "
                     "workers (--external-workers) exchange over gRPC: use --data-plane grpc or auto");
  if (o.bucket_kb > 0)
    throw UsageError("--bucket-kb sends gradient buckets inside gRPC messages; with --data-plane shm "
                     "there is no transfer to overlap: drop --bucket-kb or use --data-plane grpc");
}

static void validate_respawn(const RunOptions& o) {
  if (o.respawn == 0) return;
  if (o.on_worker_failure != "continue")
    throw UsageError("--respawn " + std::to_string(o.respawn) + " needs --on-worker-failure continue "
                     "(under abort a lost worker ends the run, so there is nothing to replace)");
  if (o.external_workers > 0)
    throw UsageError("--respawn replaces workers this coordinator spawned; hand-started workers "
                     "(--external-workers) cannot be restarted by it: drop one of the two");
}

NetworkSpec network_of_options(const RunOptions& o) {
  if (o.model_file.empty()) {
    try {
      return build_network(o.model);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--model: ") + e.what());
    }
  }
  try {
    return network_for(o.model, read_model_file(o.model_file));
  } catch (const std::invalid_argument& e) {
    throw UsageError("--model-file " + o.model_file + ": " + e.what());
  }
}

void validate_options(const RunOptions& o) {
  if (!o.cores.empty()) {
    try {
      CoreSet::parse(o.cores);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--cores: ") + e.what());
    }
  }
  if (o.external_workers > 0 && (o.procs > 0 || o.threads > 0 || o.inter_op > 1 || !o.cores.empty()))
    throw UsageError("--external-workers replaces --procs/--threads/--inter-op/--cores: hand-started "
                     "workers bring their own binding");
  try {
    parse_placement(o.placement);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--placement: ") + e.what());
  }
  try {
    parse_smt(o.smt);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--smt: ") + e.what());
  }
  if (o.external_workers > 0 && (o.placement != "numa" || o.smt != "avoid"))
    throw UsageError("--external-workers: hand-started workers bring their own binding, so --placement "
                     "and --smt do not apply (bind them with the launcher: mpirun --bind-to core, srun "
                     "--cpu-bind=cores)");
  const bool model_given = std::find(o.given.begin(), o.given.end(), "--model") != o.given.end();
  if (!o.model_file.empty() && model_given)
    throw UsageError("--model and --model-file both name the network: give one");
  if (o.init_from_model && o.model_file.empty())
    throw UsageError("--init-from-model starts from a model file's weights: it needs --model-file");
  if (o.init_from_model && (!o.init.empty() || o.resume))
    throw UsageError("--init-from-model and " + std::string(o.resume ? "--resume" : "--init") +
                     " both say where training starts: give one");
  const NetworkSpec net = network_of_options(o);
  try {
    parse_augment(o.augment);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--augment: ") + e.what());
  }
  const OptimizerConfig optimizer = optimizer_config(o);
  try {
    optimizer.validate();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (o.optimizer == "adam" && o.momentum != 0)
    throw UsageError("--momentum applies to --optimizer sgd only (Adam has its own moments)");
  if (o.optimizer != "sgd") {
    if (o.weight_decay != 0) throw UsageError("--weight-decay applies to --optimizer sgd only");
    if (o.nesterov) throw UsageError("--nesterov applies to --optimizer sgd only");
    if (o.bias_lr_scale != 1) throw UsageError("--bias-lr-scale applies to --optimizer sgd only");
  }
  {
    const bool has_bn = net.sample_granule() > 1;
    if (o.bn_group > 0) {
      if (!has_bn)
        throw UsageError("--bn-group: " + o.model + " has no batch norm (airbench94 has)");
      if (o.bn_group < 2)
        throw UsageError("--bn-group must be at least 2 (a group's unbiased variance needs two "
                         "samples), got " + std::to_string(o.bn_group));
    }
    for (const LayerSpec& l : net.layers)
      if (o.precision == "bf16" && l.kind == LayerKind::kLrn)
        throw UsageError("--precision bf16: " + o.model + "'s local response normalization runs in f32 "
                         "only; use --precision f32 (airbench94, seed_cnn: either)");
    const bool has_whitening =
        !net.layers.empty() && net.layers[0].frozen && net.layers[0].bias_param >= 0;
    if (o.whiten_bias_epochs > 0 && !has_whitening)
      throw UsageError("--whiten-bias-epochs: " + o.model + " has no whitening layer (a frozen "
                       "first convolution with a bias, as airbench94's)");
  }
  if (!o.checkpoint_every.empty() && o.checkpoint_dir.empty())
    throw UsageError("--checkpoint-every needs --checkpoint-dir DIR");
  if (o.resume && o.checkpoint_dir.empty()) throw UsageError("--resume needs --checkpoint-dir DIR");
  if (o.resume && !o.init.empty()) throw UsageError("--resume and --init both name a starting point: give one");
  if (o.autotune && o.resume)
    throw UsageError("--autotune with --resume: the split was chosen when the run started; resume "
                     "with its --procs and --threads (the run report's \"split\")");
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
  if (o.autotune && (o.procs > 0 || o.threads > 0 || o.inter_op > 1 || o.external_workers > 0))
    throw UsageError("--autotune chooses the split itself (P x I x T): give neither --procs, --threads, --inter-op nor "
                     "--external-workers with it");
  validate_respawn(o);
  validate_exchange_only(o);
  validate_data_plane(o);
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
