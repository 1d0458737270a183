#include "run_options.h"

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

namespace ts {

namespace {

int64_t to_int(const std::string& flag, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE)
    throw UsageError(flag + " expects a whole number, got '" + v + "'");
  return x;
}

double to_double(const std::string& flag, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || errno == ERANGE)
    throw UsageError(flag + " expects a number, got '" + v + "'");
  return x;
}

int to_int32(const std::string& flag, const std::string& v) {
  const int64_t x = to_int(flag, v);
  if (x < -(int64_t(1) << 31) || x >= (int64_t(1) << 31))
    throw UsageError(flag + " value '" + v + "' is out of range");
  return int(x);
}

struct Flag {
  bool takes_value;
  std::function<void(RunOptions&, const std::string&)> set;
};

const std::map<std::string, Flag>& flags() {
  static const std::map<std::string, Flag> table = {
      // 0 in RunOptions means "not given"; a given value must be a real count.
      {"--procs", {true, [](RunOptions& o, const std::string& v) {
         o.procs = to_int32("--procs", v);
         if (o.procs < 1) throw UsageError("--procs must be at least 1, got " + v);
       }}},
      {"--threads", {true, [](RunOptions& o, const std::string& v) {
         o.threads = to_int32("--threads", v);
         if (o.threads < 1) throw UsageError("--threads must be at least 1, got " + v);
       }}},
      {"--cores", {true, [](RunOptions& o, const std::string& v) { o.cores = v; }}},
      {"--external-workers", {true, [](RunOptions& o, const std::string& v) { o.external_workers = to_int32("--external-workers", v); }}},
      {"--epochs", {true, [](RunOptions& o, const std::string& v) { o.epochs = to_int32("--epochs", v); }}},
      {"--batch", {true, [](RunOptions& o, const std::string& v) { o.batch = to_int32("--batch", v); }}},
      {"--batch-per-worker", {true, [](RunOptions& o, const std::string& v) { o.batch_per_worker = to_int32("--batch-per-worker", v); }}},
      {"--lr", {true, [](RunOptions& o, const std::string& v) { o.lr = to_double("--lr", v); }}},
      {"--optimizer", {true, [](RunOptions& o, const std::string& v) { o.optimizer = v; }}},
      {"--momentum", {true, [](RunOptions& o, const std::string& v) { o.momentum = to_double("--momentum", v); }}},
      {"--seed", {true, [](RunOptions& o, const std::string& v) {
         const int64_t s = to_int("--seed", v);
         if (s < 0) throw UsageError("--seed must be >= 0, got " + v);
         o.seed = uint64_t(s);
       }}},
      {"--augment", {true, [](RunOptions& o, const std::string& v) { o.augment = v; }}},
      {"--model", {true, [](RunOptions& o, const std::string& v) { o.model = v; }}},
      {"--data", {true, [](RunOptions& o, const std::string& v) { o.data = v; }}},
      {"--port", {true, [](RunOptions& o, const std::string& v) { o.port = to_int32("--port", v); }}},
      {"--port-file", {true, [](RunOptions& o, const std::string& v) { o.port_file = v; }}},
      {"--listen", {true, [](RunOptions& o, const std::string& v) { o.listen = v; }}},
      {"--report", {true, [](RunOptions& o, const std::string& v) { o.report = v; }}},
      {"--steps", {true, [](RunOptions& o, const std::string& v) { o.steps = to_int("--steps", v); }}},
      {"--init", {true, [](RunOptions& o, const std::string& v) { o.init = v; }}},
      {"--save", {true, [](RunOptions& o, const std::string& v) { o.save = v; }}},
      {"--no-shuffle", {false, [](RunOptions& o, const std::string&) { o.shuffle = false; }}},
      {"--eval-every", {true, [](RunOptions& o, const std::string& v) { o.eval_every = to_int32("--eval-every", v); }}},
      {"--eval-batch", {true, [](RunOptions& o, const std::string& v) { o.eval_batch = to_int32("--eval-batch", v); }}},
      {"--loader-threads", {true, [](RunOptions& o, const std::string& v) { o.loader_threads = to_int32("--loader-threads", v); }}},
      {"--worker-bin", {true, [](RunOptions& o, const std::string& v) { o.worker_bin = v; }}},
      {"--connect-timeout", {true, [](RunOptions& o, const std::string& v) { o.connect_timeout_s = to_double("--connect-timeout", v); }}},
      {"--step-timeout", {true, [](RunOptions& o, const std::string& v) { o.step_timeout_s = to_double("--step-timeout", v); }}},
      {"--progress", {true, [](RunOptions& o, const std::string& v) { o.progress = v; }}},
      {"--coordinator-priority", {true, [](RunOptions& o, const std::string& v) { o.coordinator_priority = v; }}},
      {"--bind", {true, [](RunOptions& o, const std::string& v) { o.listen = v; }}},
      {"--on-worker-failure", {true, [](RunOptions& o, const std::string& v) { o.on_worker_failure = v; }}},
      {"--failure-grace", {true, [](RunOptions& o, const std::string& v) { o.failure_grace_s = to_double("--failure-grace", v); }}},
      {"--checkpoint-dir", {true, [](RunOptions& o, const std::string& v) { o.checkpoint_dir = v; }}},
      {"--checkpoint-every", {true, [](RunOptions& o, const std::string& v) { o.checkpoint_every = v; }}},
      {"--checkpoint-keep", {true, [](RunOptions& o, const std::string& v) { o.checkpoint_keep = to_int32("--checkpoint-keep", v); }}},
      {"--resume", {false, [](RunOptions& o, const std::string&) { o.resume = true; }}},
      {"--tls-cert", {true, [](RunOptions& o, const std::string& v) { o.tls_cert = v; }}},
      {"--tls-key", {true, [](RunOptions& o, const std::string& v) { o.tls_key = v; }}},
      {"--tls-ca", {true, [](RunOptions& o, const std::string& v) { o.tls_ca = v; }}},
      {"--warmup-steps", {true, [](RunOptions& o, const std::string& v) { o.warmup_steps = to_int32("--warmup-steps", v); }}},
      {"--trace", {true, [](RunOptions& o, const std::string& v) { o.trace = v; }}},
      {"--autotune", {false, [](RunOptions& o, const std::string&) { o.autotune = true; }}},
      {"--autotune-steps", {true, [](RunOptions& o, const std::string& v) { o.autotune_steps = to_int32("--autotune-steps", v); }}},
      {"--autotune-rounds", {true, [](RunOptions& o, const std::string& v) { o.autotune_rounds = to_int32("--autotune-rounds", v); }}},
      {"--autotune-time", {true, [](RunOptions& o, const std::string& v) { o.autotune_time_s = to_double("--autotune-time", v); }}},
      {"--help", {false, [](RunOptions& o, const std::string&) { o.help = true; }}},
      {"-h", {false, [](RunOptions& o, const std::string&) { o.help = true; }}},
  };
  return table;
}

}  // namespace

RunOptions parse_run_options(int argc, char** argv, int first) {
  RunOptions o;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    const size_t eq = arg.find('=');
    if (arg.compare(0, 2, "--") == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const auto it = flags().find(arg);
    if (it == flags().end())
      throw UsageError("unknown argument '" + std::string(argv[i]) + "' (see --help)");
    if (it->second.takes_value && !has_value) {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value (see --help)");
      value = argv[++i];
    } else if (!it->second.takes_value && has_value) {
      throw UsageError(arg + " takes no value");
    }
    it->second.set(o, value);
  }
  return o;
}

std::string usage_text(const char* program) {
  const RunOptions d;
  std::ostringstream s;
  s << "usage: " << program << " [flags]\n"
    << "       " << program << " sweep --data DIR [flags]   (measures every split; sweep --help)\n"
    << "       " << program << " make-synthetic-data DIR [--seed N]\n\n"
    << "Trains a CNN on CIFAR-10 with P worker processes of T OpenMP threads each, gradients\n"
    << "averaged over gRPC. For a fixed global batch and seed the result does not depend on P\n"
    << "or T, so splits can be compared by speed alone.\n\n"
    << "The split (default: 1 worker using every core this process may run on):\n"
    << "  --procs P              worker processes (default: cores / T, or 1)\n"
    << "  --threads T            OpenMP threads per worker (default: cores / P)\n"
    << "  --cores LIST           cores to split, e.g. 0-3,8 (default: this process's affinity)\n"
    << "  --external-workers N   spawn nothing; wait for N hand-started threadsplit_worker\n"
    << "                         processes (token in THREADSPLIT_TOKEN)\n"
    << "Training:\n"
    << "  --epochs N             (default " << d.epochs << ")\n"
    << "  --batch B              global batch (default " << d.batch << ")\n"
    << "  --batch-per-worker B   fix the per-worker batch instead; global = P x B\n"
    << "  --optimizer adam|sgd   (default " << d.optimizer << ")\n"
    << "  --lr X                 learning rate (default 0.001)\n"
    << "  --momentum X           SGD momentum (default 0)\n"
    << "  --seed N               initialization, shuffles, augmentation (default " << d.seed << ")\n"
    << "  --augment none|flip|flip,crop   (default " << d.augment << ")\n"
    << "  --model seed_cnn|tf_tutorial_cnn   (default " << d.model << ")\n"
    << "  --no-shuffle           visit the training records in file order\n"
    << "  --steps N              stop after N global steps (default: all epochs)\n"
    << "  --eval-every N         validate every N epochs and after the last, test at the end;\n"
    << "                         0: no evaluation at all (default " << d.eval_every << ")\n"
    << "  --eval-batch N         evaluation chunk per worker (default " << d.eval_batch << ")\n"
    << "  --loader-threads N     loader threads per worker (default " << d.loader_threads << ")\n"
    << "Files:\n"
    << "  --data DIR             CIFAR-10 binary version (cifar-10-batches-bin)\n"
    << "  --init CKPT            start from this checkpoint (parameters, optimizer, position)\n"
    << "  --save CKPT            write a checkpoint at the end (and when a run aborts)\n"
    << "  --report FILE          write the run report (JSON)\n"
    << "Network and processes:\n"
    << "  --listen HOST          address to listen on (default " << d.listen << ")\n"
    << "  --port N               port; 0 picks a free one (default 0)\n"
    << "  --port-file FILE       write the chosen port to FILE\n"
    << "  --worker-bin PATH      threadsplit_worker to spawn (default: beside this program)\n"
    << "  --connect-timeout S    workers must join within S seconds (default " << d.connect_timeout_s << ")\n"
    << "  --step-timeout S       a worker silent for S seconds is dead (default " << d.step_timeout_s << ")\n"
    << "  --progress auto|on|off live progress bar (default auto: only on a terminal)\n"
    << "  --coordinator-priority auto|realtime|normal  run the coordinator's training thread\n"
    << "                         SCHED_FIFO (it is on every step's critical path; workers stay\n"
    << "                         normal): auto where permitted, realtime or fail, normal never\n"
    << "                         (default auto)\n"
    << "  --bind HOST            same as --listen; anything but loopback admits other hosts\n"
    << "  --tls-cert/--tls-key PEM  serve TLS with this certificate and key\n"
    << "  --tls-ca PEM           also require workers to present a certificate signed by it\n"
    << "Failures and checkpoints:\n"
    << "  --on-worker-failure abort|continue  abort: final checkpoint, exit 1; continue: re-deal\n"
    << "                         the rest of the epoch among the survivors (default " << d.on_worker_failure << ")\n"
    << "  --failure-grace S      a worker silent S seconds beyond the slowest recent step is\n"
    << "                         lost (default " << d.failure_grace_s << ")\n"
    << "  --checkpoint-dir DIR   write rotated checkpoints here (and the abort checkpoint)\n"
    << "  --checkpoint-every K   every K steps, or Ne for every N epochs\n"
    << "  --checkpoint-keep N    keep the newest N (default " << d.checkpoint_keep << ")\n"
    << "  --resume               continue from the newest valid checkpoint in --checkpoint-dir;\n"
    << "                         --steps then counts from step 0, as in the interrupted run\n"
    << "Measuring:\n"
    << "  --warmup-steps N       leave the first N steps out of the report's timed figures\n"
    << "  --trace FILE           Chrome trace-event JSON: each worker's phases per step and the\n"
    << "                         coordinator's reduce/update (chrome://tracing, ui.perfetto.dev)\n"
    << "  --autotune             first measure every split P x T = cores in short trials, then\n"
    << "                         train with the fastest (give neither --procs nor --threads)\n"
    << "  --autotune-steps N     timed steps per trial (default: about 2 s worth)\n"
    << "  --autotune-rounds N    most trials per split (default " << d.autotune_rounds << ")\n"
    << "  --autotune-time S      start no new round of trials after S seconds (default " << d.autotune_time_s << ")\n"
    << "  --help                 this text\n";
  return s.str();
}

void validate_options(const RunOptions& o) {
  auto positive = [](const char* flag, int64_t v) {
    if (v < 1) throw UsageError(std::string(flag) + " must be at least 1, got " + std::to_string(v));
  };
  if (o.procs < 0) throw UsageError("--procs must be at least 1, got " + std::to_string(o.procs));
  if (o.threads < 0) throw UsageError("--threads must be at least 1, got " + std::to_string(o.threads));
  if (o.external_workers < 0)
    throw UsageError("--external-workers must be >= 0, got " + std::to_string(o.external_workers));
  if (o.external_workers > 0 && (o.procs > 0 || o.threads > 0 || !o.cores.empty()))
    throw UsageError("--external-workers replaces --procs/--threads/--cores: hand-started "
                     "workers bring their own binding");
  if (o.procs > 1024) throw UsageError("--procs " + std::to_string(o.procs) + " is more than 1024");
  if (o.threads > 4096) throw UsageError("--threads " + std::to_string(o.threads) + " is more than 4096");
  positive("--epochs", o.epochs);
  positive("--batch", o.batch);
  if (o.batch_per_worker < 0)
    throw UsageError("--batch-per-worker must be at least 1, got " + std::to_string(o.batch_per_worker));
  if (o.batch > 50000 || o.batch_per_worker > 50000)
    throw UsageError("the batch may not exceed the 50000 training records");
  if (o.steps < 0) throw UsageError("--steps must be >= 0, got " + std::to_string(o.steps));
  if (o.eval_every < 0) throw UsageError("--eval-every must be >= 0 (0: never evaluate), got " + std::to_string(o.eval_every));
  positive("--eval-batch", o.eval_batch);
  positive("--loader-threads", o.loader_threads);
  if (o.loader_threads > 64) throw UsageError("--loader-threads " + std::to_string(o.loader_threads) + " is more than 64");
  if (o.port < 0 || o.port > 65535) throw UsageError("--port must be in 0..65535, got " + std::to_string(o.port));
  if (!(o.connect_timeout_s > 0)) throw UsageError("--connect-timeout must be positive");
  if (!(o.step_timeout_s > 0)) throw UsageError("--step-timeout must be positive");
  if (o.progress != "auto" && o.progress != "on" && o.progress != "off")
    throw UsageError("--progress must be auto, on or off, got '" + o.progress + "'");
  if (o.coordinator_priority != "auto" && o.coordinator_priority != "realtime" &&
      o.coordinator_priority != "normal")
    throw UsageError("--coordinator-priority must be auto, realtime or normal, got '" +
                     o.coordinator_priority + "'");
  if (o.on_worker_failure != "abort" && o.on_worker_failure != "continue")
    throw UsageError("--on-worker-failure must be abort or continue, got '" + o.on_worker_failure + "'");
  if (!(o.failure_grace_s > 0) || o.failure_grace_s > 3600)
    throw UsageError("--failure-grace must be in (0, 3600] seconds");
  if (o.checkpoint_keep < 1) throw UsageError("--checkpoint-keep must be at least 1, got " + std::to_string(o.checkpoint_keep));
  if (!o.checkpoint_every.empty() && o.checkpoint_dir.empty())
    throw UsageError("--checkpoint-every needs --checkpoint-dir DIR");
  if (o.resume && o.checkpoint_dir.empty()) throw UsageError("--resume needs --checkpoint-dir DIR");
  if (o.resume && !o.init.empty()) throw UsageError("--resume and --init both name a starting point: give one");
  if (!o.checkpoint_every.empty()) {
    const std::string& v = o.checkpoint_every;
    const bool epochs = v.back() == 'e';
    const std::string n = epochs ? v.substr(0, v.size() - 1) : v;
    char* end = nullptr;
    const long long k = n.empty() ? 0 : std::strtoll(n.c_str(), &end, 10);
    if (n.empty() || *end != '\0' || k < 1)
      throw UsageError("--checkpoint-every expects a step count K or Ne for epochs, got '" + v + "'");
  }
  if (o.tls_cert.empty() != o.tls_key.empty())
    throw UsageError("--tls-cert and --tls-key go together");
  if (!o.tls_ca.empty() && o.tls_cert.empty())
    throw UsageError("--tls-ca needs --tls-cert and --tls-key (the coordinator's own identity)");
  if (o.warmup_steps < 0) throw UsageError("--warmup-steps must be >= 0, got " + std::to_string(o.warmup_steps));
  if (o.steps > 0 && o.warmup_steps >= o.steps)
    throw UsageError("--warmup-steps " + std::to_string(o.warmup_steps) + " leaves none of --steps " +
                     std::to_string(o.steps) + " to time");
  if (o.autotune && (o.procs > 0 || o.threads > 0 || o.external_workers > 0))
    throw UsageError("--autotune chooses the split itself: give neither --procs, --threads nor "
                     "--external-workers with it");
  if (o.autotune_steps < 0) throw UsageError("--autotune-steps must be >= 0 (0: about 2 s per trial)");
  positive("--autotune-rounds", o.autotune_rounds);
  if (!(o.autotune_time_s > 0)) throw UsageError("--autotune-time must be positive");
  if (o.data.empty()) throw UsageError("--data DIR is required (the CIFAR-10 binary version; "
                                       "scripts/train.sh finds or fetches it)");
}

}  // namespace ts
