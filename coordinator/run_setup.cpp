#include "run_setup.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "atomic_file.h"
#include "checkpoint.h"
#include "model_source.h"
#include "resume_checks.h"
#include "run_report.h"
#include "timing.h"
#include "user_error.h"
#include "whitening.h"

namespace ts {

namespace {

std::string random_hex(size_t bytes) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!in.read(&raw[0], std::streamsize(bytes))) throw std::runtime_error("cannot read /dev/urandom");
  static const char* const kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : raw) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

std::string absolute_path(const std::string& p) {
  char buf[PATH_MAX];
  if (!realpath(p.c_str(), buf)) return p;
  return buf;
}

void check_writable(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  const std::string dir = parent_directory(path);
  if (access(dir.c_str(), W_OK) != 0)
    throw UserError(flag + " " + path + ": the directory " + dir + " does not exist or is not writable");
}

std::string find_worker_binary(const std::string& flag_value) {
  std::vector<std::string> candidates;
  if (!flag_value.empty()) {
    if (access(flag_value.c_str(), X_OK) != 0)
      throw UserError("--worker-bin " + flag_value + " is not an executable file");
    return absolute_path(flag_value);
  }
  if (const char* env = getenv("THREADSPLIT_WORKER_BIN")) candidates.push_back(env);
  const std::string self = absolute_path("/proc/self/exe");
  const std::string dir = parent_directory(self);
  candidates.push_back(dir + "/threadsplit_worker");
  candidates.push_back(dir + "/../worker/threadsplit_worker");
  for (const auto& c : candidates)
    if (access(c.c_str(), X_OK) == 0) return absolute_path(c);
  throw UserError("cannot find threadsplit_worker beside " + self +
                  " (build it, or name it with --worker-bin)");
}

// Decides P, T and the cores. Throws UserError.
void resolve_split(RunSetup& s) {
  const RunOptions& o = s.options;
  if (o.external_workers > 0) {
    s.world_size = o.external_workers;
    s.threads = 0;
    s.split_reason = "--external-workers " + std::to_string(o.external_workers) +
                     ": hand-started workers bring their own binding";
    return;
  }
  const CoreSet allowed = CoreSet::of_this_process();
  if (o.cores.empty()) {
    s.cores = allowed;
  } else {
    s.cores = CoreSet::parse(o.cores);  // its syntax was checked by validate_options
    const auto& ok = allowed.cores();
    for (int c : s.cores.cores())
      if (std::find(ok.begin(), ok.end(), c) == ok.end())
        throw UserError("--cores names core " + std::to_string(c) +
                        ", which this process may not run on (allowed: " + allowed.to_string() + ")");
  }
  // The topology decides how many threads fit before SMT siblings (--smt avoid: physical
  // cores) and where each worker goes (common/placement.h).
  const SmtPolicy smt = parse_smt(o.smt);  // both checked by validate_options
  const PlacementPolicy policy = parse_placement(o.placement);
  try {
    s.machine = Topology::of_this_machine();
    s.topology = s.machine.restricted_to(s.cores);
  } catch (const std::exception& e) {
    throw UserError(std::string("cannot place the workers: ") + e.what());
  }
  const int n = placeable_threads(s.topology, smt);
  const int I = std::max(1, o.inter_op);
  int P = o.procs, T = o.threads;
  const std::string per = I > 1 ? " / inter-op" : "";
  if (P == 0 && T == 0) {
    P = 1;
    T = std::max(1, n / I);
    s.split_reason = I > 1 ? "--inter-op " + std::to_string(I) + ": one worker, threads = cores / inter-op"
                           : "default: one worker using every core";
  } else if (T == 0) {
    T = std::max(1, n / (P * I));
    s.split_reason = "--procs " + std::to_string(P) + ": threads = cores / procs" + per;
  } else if (P == 0) {
    P = std::max(1, n / (T * I));
    s.split_reason = "--threads " + std::to_string(T) + ": procs = cores / threads" + per;
  } else {
    s.split_reason = o.split_chosen_by.empty() ? "--procs and --threads as given" : o.split_chosen_by;
  }
  s.world_size = P;
  s.threads = T;
  s.inter_op = I;
  s.placement = place(s.topology, P, I, T, policy, smt);
  s.oversubscribed = s.placement.oversubscribed;
  for (const WorkerPlace& w : s.placement.workers) s.worker_cores.push_back(w.cores);
}


// A fresh run must not write into another run's checkpoints: its rotation would keep the
// other run's newer files and a later --resume would continue the wrong run.
void check_fresh_directory(const CheckpointStore& store, bool overwrite, bool* replace) {
  const auto found = store.survey();
  if (found.empty()) return;
  if (overwrite) {
    std::fprintf(stderr, "threadsplit: --checkpoint-overwrite: the %zu checkpoint(s) in %s (newest %s) "
                 "will be deleted once this run has written its first checkpoint\n",
                 found.size(), store.dir().c_str(), found.front().path.c_str());
    *replace = true;
    return;
  }
  throw UserError("--checkpoint-dir " + store.dir() + " already holds " + std::to_string(found.size()) +
                  " checkpoint(s) of another run (newest " + found.front().path +
                  (found.front().lineage ? ", " + describe_lineage(*found.front().lineage) : "") +
                  "): continue that run with --resume, use another directory, or replace them with "
                  "--checkpoint-overwrite");
}

// --resume continues a run only under the settings it was trained with.
void check_same_math(const std::string& start_from, const TrainingState& st, const std::string& given) {
  const auto changes = math_changes(st.config_json, given);
  if (!changes) {
    std::fprintf(stderr, "threadsplit: note: %s records no settings: they cannot be compared with this "
                 "run's\n", start_from.c_str());
    return;
  }
  if (!changes->empty())
    throw UserError(start_from + " was trained with other settings that change the math (" +
                    describe_changes(*changes) + "): resume with the flags of the interrupted run, or "
                    "start a new run from its parameters with --init CKPT");
}

int steps_per_epoch(const RunSetup& s) {
  if (s.steps_per_epoch > 0) return s.steps_per_epoch;
  return plan_epoch(s.options.seed, 0, s.split.train_begin, s.split.train_end, s.options.shuffle,
                    s.global_batch, s.options.drop_last, s.granule).steps();
}

// airbench94's first convolution is not trained but computed from the training images
// (common/whitening.h): a frozen 2x2 convolution with 12 x 2 filters over 3 channels.
void init_whitening(const RunSetup& s, std::vector<float>& params) {
  if (s.net.layers.empty()) return;
  const LayerSpec& l = s.net.layers[0];
  if (l.kind != LayerKind::kConv || !l.frozen || l.kernel != 2 || l.in.c != 3 || l.out.c != 24) return;
  constexpr int kWhiteningImages = 5000;  // airbench's
  const Stopwatch sw;
  const Cifar10 data = Cifar10::open(s.data_dir);
  const int n = std::min(kWhiteningImages, s.split.train_size());
  const std::vector<float> w = whitening_filters_from(data, n, s.options.normalize);
  const ParamSpec& p = s.net.params[size_t(l.weight_param)];
  std::copy(w.begin(), w.end(), params.begin() + std::ptrdiff_t(p.offset));
  std::printf("threadsplit: %s: whitening filters from the first %d training images (%.2f s)\n",
              l.name.c_str(), n, sw.elapsed());
}

}  // namespace

Prepared prepare(const RunOptions& o) {
  Prepared p;
  RunSetup& s = p.setup;
  s.options = o;
  std::vector<float> file_params;  // --init-from-model: the model file's initializers
  // --model, --augment and the optimizer flags were checked by validate_options.
  if (!o.model_file.empty()) {
    s.model_onnx = as_user_error("--model-file " + o.model_file + ": ", [&] { return read_model_file(o.model_file); });
    // One import: the description, and the initializers for --init-from-model.
    const ImportedModel m =
        as_user_error("--model-file " + o.model_file + ": ", [&] { return import_model(o.model, s.model_onnx); });
    s.net = m.net;
    if (o.init_from_model) file_params = as_user_error("", [&] { return initial_params_of(m); });
  } else {
    s.net = build_network(o.model);
  }
  if (o.bn_group > 0) set_bn_group(s.net, o.bn_group);  // validate_options checked it applies
  s.granule = s.net.sample_granule();
  s.optimizer = optimizer_config(o);
  resolve_split(s);
  s.data_plane = o.data_plane == "shm" || (o.data_plane == "auto" && o.external_workers == 0 && o.bucket_kb == 0 && o.respawn == 0)
                     ? "shm" : "grpc";
  s.global_batch = o.batch_per_worker > 0 ? o.batch_per_worker * s.world_size : o.batch;
  if (s.global_batch < s.world_size)
    throw UserError("the global batch (" + std::to_string(s.global_batch) + ") is smaller than the " +
                    std::to_string(s.world_size) + " workers: every worker needs a sample per step");
  s.split = keras_validation_split(o.validation_split);
  if (s.global_batch > s.split.train_size())
    throw UserError("the global batch (" + std::to_string(s.global_batch) + ") is larger than the " +
                    std::to_string(s.split.train_size()) + " training records");
  if (s.granule > 1) {
    // Batch norm over fixed groups: every step's batch is a whole number of groups, dealt in
    // whole groups (network.h), or the statistics would depend on the split.
    const std::string g = std::to_string(s.granule);
    if (s.global_batch % s.granule != 0)
      throw UserError("the global batch (" + std::to_string(s.global_batch) + ") is not a multiple of " +
                      o.model + "'s batch-norm group of " + g + ": choose a batch that is, or another --bn-group");
    const int tail = s.split.train_size() % s.global_batch;
    if (!o.drop_last && tail % s.granule != 0)
      throw UserError("each epoch's last batch would hold " + std::to_string(tail) + " records, not a "
                      "multiple of the batch-norm group of " + g + ": add --drop-last, or choose a "
                      "batch that divides the " + std::to_string(s.split.train_size()) + " training records");
  }
  if (o.precision == "bf16" && !__builtin_cpu_supports("avx512bf16"))
    throw UserError("--precision bf16 needs a CPU with avx512_bf16 (or AMX); this one has neither: "
                    "use --precision f32");
  s.steps_per_epoch = steps_per_epoch(s);
  if (s.steps_per_epoch == 0)
    throw UserError("--drop-last leaves no step in an epoch: the global batch (" +
                    std::to_string(s.global_batch) + ") exceeds the training records");
  if (o.epochs_exact > 0) {
    const int64_t total = int64_t(std::ceil(o.epochs_exact * s.steps_per_epoch));
    s.last_epoch_steps = int(std::max<int64_t>(1, total - int64_t(o.epochs - 1) * s.steps_per_epoch));
    s.last_epoch_steps = std::min(s.last_epoch_steps, s.steps_per_epoch);
  }
  const int64_t epochs_end = int64_t(o.epochs - 1) * s.steps_per_epoch +
                             (s.last_epoch_steps > 0 ? s.last_epoch_steps : s.steps_per_epoch);
  // The schedule ends where training does: at --epochs, or at --steps (counted from step 0
  // fresh and under --resume; from the starting checkpoint's step under --init, below).
  s.schedule_steps = o.steps > 0 ? std::min(epochs_end, o.steps) : epochs_end;
  {
    const Cifar10 data = Cifar10::open(o.data);  // DataError says what is wrong with it
    s.data_dir = absolute_path(data.dir());
    s.synthetic_data = data.synthetic();
    s.data_fingerprint = data.fingerprint();
  }
  check_writable("--save", o.save);
  check_writable("--report", o.report);
  check_writable("--trace", o.trace);
  check_writable("--export-onnx", o.export_onnx);
  if (!o.port_file.empty()) check_writable("--port-file", o.port_file);
  if (o.external_workers == 0) p.worker_bin = find_worker_binary(o.worker_bin);

  p.params.resize(s.net.num_params);
  p.optimizer = make_optimizer(s.optimizer, s.net);  // its groups, frozen weights and buffers
  s.run_id = random_hex(6);
  s.lineage = s.run_id;
  // This run's settings as the report and the checkpoints record them; --resume compares.
  const std::string given_config = config_json(s);
  if (!o.checkpoint_dir.empty()) {
    p.store.emplace(o.checkpoint_dir, o.checkpoint_keep);
    if (!o.resume) check_fresh_directory(*p.store, o.checkpoint_overwrite, &p.replace_other_checkpoints);
  }
  std::string start_from = o.init.empty() ? "" : "--init " + o.init;
  std::optional<TrainingState> start;
  if (o.resume) {
    std::vector<std::string> skipped;
    auto newest = p.store->load_newest(s.net, &skipped);
    for (const auto& why : skipped)
      std::fprintf(stderr, "threadsplit: skipping a damaged checkpoint: %s\n", why.c_str());
    if (newest) {
      start_from = "--resume " + newest->path;
      start = std::move(newest->state);
      if (start->seed != o.seed)
        throw UserError(start_from + " was trained with --seed " + std::to_string(start->seed) +
                        ": resume with the flags of the interrupted run");
      check_same_math(start_from, *start, given_config);
      s.lineage = start->lineage;
      std::fprintf(stderr, "threadsplit: resuming from %s (step %lld, %s)\n", newest->path.c_str(),
                   (long long)start->step, describe_lineage(start->lineage).c_str());
    } else if (!p.store->list().empty()) {
      // Starting over beside files that could not be resumed would continue nothing and mix
      // two runs in one directory.
      throw UserError("--resume: none of the " + std::to_string(p.store->list().size()) +
                      " checkpoint(s) in " + o.checkpoint_dir + " can be resumed by this run (each is "
                      "named above with why): fix the flags, or move the files away to start afresh");
    } else {
      std::fprintf(stderr, "threadsplit: --resume: no checkpoint in %s yet; starting from step 0\n",
                   o.checkpoint_dir.c_str());
    }
  } else if (!o.init.empty()) {
    start = as_user_error("--init: ", [&] { return load_checkpoint(o.init, s.net); });
  }
  if (p.store) p.store->set_lineage(s.lineage);
  if (start) {
    TrainingState& st = *start;
    p.params = st.params;
    p.step = st.step;
    const int epoch_steps = steps_per_epoch(s);
    const std::string beyond = position_problem(st.step_in_epoch, epoch_steps, s.global_batch);
    if (o.resume) {
      if (!beyond.empty())
        throw UserError(start_from + ": " + beyond + ": resume with the flags of the interrupted run");
      p.epoch = st.epoch;
      p.step_in_epoch = st.step_in_epoch;
    } else {
      // --init is a new run: the position carries over only where the epoch plan is the same.
      const auto changes = math_changes(st.config_json, given_config);
      const bool same_plan = changes && std::none_of(changes->begin(), changes->end(), [](const SettingChange& c) {
        return c.field == "global_batch" || c.field == "train_records" || c.field == "shuffle" ||
               c.field == "seed";
      });
      if (same_plan && beyond.empty()) {
        p.epoch = st.epoch;
        p.step_in_epoch = st.step_in_epoch;
      } else {
        p.epoch = st.epoch + (st.step_in_epoch > 0 ? 1 : 0);
        p.step_in_epoch = 0;
        std::fprintf(stderr, "threadsplit: note: %s was trained with another epoch plan (%s): this run "
                     "starts at the beginning of epoch %lld\n", start_from.c_str(),
                     changes ? describe_changes(*changes).c_str() : "its settings are not recorded",
                     (long long)p.epoch + 1);
      }
    }
    if (st.optimizer) {
      if (!o.resume && st.optimizer->config.kind != s.optimizer.kind) {
        std::fprintf(stderr, "threadsplit: note: %s holds %s state; this run's %s starts from fresh state\n",
                     start_from.c_str(), st.optimizer->config.kind.c_str(), s.optimizer.kind.c_str());
      } else {
        try {
          p.optimizer->restore(*st.optimizer);
        } catch (const std::invalid_argument& e) {
          throw UserError(start_from + ": its optimizer state does not fit this run (" + e.what() + ")");
        }
      }
    }
    if (st.seed != o.seed && !o.resume)
      std::fprintf(stderr, "threadsplit: note: --init was trained with seed %llu, this run uses %llu\n",
                   (unsigned long long)st.seed, (unsigned long long)o.seed);
    if (o.resume) {
      // --steps counts from step 0, as in the run that was interrupted.
      if (o.steps > 0) s.options.steps = o.steps - st.step;
      p.nothing_left = (o.steps > 0 && s.options.steps <= 0) || p.epoch >= o.epochs ||
                       (s.last_epoch_steps > 0 && p.epoch == o.epochs - 1 &&
                        p.step_in_epoch >= s.last_epoch_steps);
    }
  } else if (o.init_from_model) {
    p.params = std::move(file_params);
    std::printf("threadsplit: %s: starting from the model file's initializers\n", o.model_file.c_str());
  } else {
    init_params(s.net, o.seed, p.params.data());
    init_whitening(s, p.params);
    if (!o.model_file.empty())
      std::printf("threadsplit: %s: weights initialized as PyTorch initializes them (kaiming-uniform "
                  "weights, zero biases, batch norm 1 and 0; seed %llu); --init-from-model starts from "
                  "the file's\n", o.model_file.c_str(), (unsigned long long)o.seed);
  }

  if (o.external_workers > 0) {
    const char* token = getenv("THREADSPLIT_TOKEN");
    if (!token || !*token)
      throw UserError("--external-workers needs the run token in THREADSPLIT_TOKEN (give every "
                      "worker the same value in its environment)");
    s.token = token;
  } else {
    s.token = random_hex(16);
  }
  if (o.steps > 0 && !o.resume) s.schedule_steps = std::min(epochs_end, p.step + o.steps);
  // --stop-after: a slice; the schedule above keeps the whole run's length.
  if (o.stop_after > 0)
    s.options.steps = s.options.steps > 0 ? std::min(s.options.steps, o.stop_after) : o.stop_after;
  s.config_json = config_json(s);
  return p;
}

}  // namespace ts
