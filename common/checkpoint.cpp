#include "checkpoint.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "atomic_file.h"
#include "checkpoint.pb.h"
#include "float_packing.h"

namespace ts {

uint32_t checkpoint_crc32(const std::string& bytes) {
  // zlib's crc32() takes its length as uInt: checkpoints are far below 4 GiB (kMaxMessageBytes).
  return uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size())));
}

namespace {

using TensorList = google::protobuf::RepeatedPtrField<threadsplit::Tensor>;


std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// float32 little-endian bytes, whatever the host's byte order.
void encode_floats(const float* src, size_t n, std::string* out) {
  out->resize(n * 4);
  auto* d = reinterpret_cast<unsigned char*>(&(*out)[0]);
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &src[i], 4);
    d[4 * i + 0] = static_cast<unsigned char>(u);
    d[4 * i + 1] = static_cast<unsigned char>(u >> 8);
    d[4 * i + 2] = static_cast<unsigned char>(u >> 16);
    d[4 * i + 3] = static_cast<unsigned char>(u >> 24);
  }
}

void decode_floats(const std::string& bytes, float* dst) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size() / 4;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = uint32_t(s[4 * i]) | uint32_t(s[4 * i + 1]) << 8 |
                       uint32_t(s[4 * i + 2]) << 16 | uint32_t(s[4 * i + 3]) << 24;
    std::memcpy(&dst[i], &u, 4);
  }
}

void set_tensor(threadsplit::Tensor* t, const std::string& name, const ParamSpec& p,
                const float* values) {
  t->set_name(name);
  for (int64_t d : p.shape) t->add_shape(d);
  encode_floats(values, p.size, t->mutable_data());
}

// One tensor to find by name and decode into dst[0, param->size).
struct WantedTensor {
  std::string name;
  const ParamSpec* param;
  float* dst;
};

// Finds and checks every wanted tensor before writing any of dst; `kind` says what they are
// ("parameter", "optimizer slot") in messages. Throws std::invalid_argument.
void read_tensors(const TensorList& tensors, const std::vector<WantedTensor>& wanted,
                  const std::string& kind, const std::string& model) {
  std::unordered_map<std::string, const threadsplit::Tensor*> by_name;
  for (const auto& t : tensors) {
    if (!by_name.emplace(t.name(), &t).second) {
      throw std::invalid_argument(kind + " tensor '" + t.name() + "' appears twice");
    }
  }
  std::vector<const threadsplit::Tensor*> found;
  for (const auto& w : wanted) {
    auto it = by_name.find(w.name);
    if (it == by_name.end()) {
      throw std::invalid_argument(kind + " tensor '" + w.name + "' is missing");
    }
    const threadsplit::Tensor& t = *it->second;
    const std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
    if (shape != w.param->shape) {
      throw std::invalid_argument(kind + " tensor '" + w.name + "' has shape " +
                                  shape_text(shape) + ", expected " +
                                  shape_text(w.param->shape));
    }
    if (t.data().size() != w.param->size * 4) {
      throw std::invalid_argument(kind + " tensor '" + w.name + "' holds " +
                                  std::to_string(t.data().size()) + " bytes, expected " +
                                  std::to_string(w.param->size * 4) + " (" +
                                  std::to_string(w.param->size) + " float32 values)");
    }
    found.push_back(&t);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    throw std::invalid_argument("unexpected " + kind + " tensor '" + by_name.begin()->first +
                                "' (not in network '" + model + "')");
  }
  for (size_t i = 0; i < wanted.size(); ++i) decode_floats(found[i]->data(), wanted[i].dst);
  // A state with a non-finite value is a diverged or damaged run's, whatever its CRC says:
  // resuming it would train on nothing (the caller's dst stays unused).
  for (const auto& w : wanted) {
    const size_t j = first_nonfinite(reinterpret_cast<const char*>(w.dst), w.param->size);
    if (j == w.param->size) continue;
    char value[32];
    std::snprintf(value, sizeof value, "%g", double(w.dst[j]));
    throw std::invalid_argument(kind + " tensor '" + w.name + "' holds a non-finite value (" +
                                value + " at element " + std::to_string(j) +
                                "): the file is damaged or holds a diverged state");
  }
}

// Durable and atomic (common/atomic_file.h), with the failure named as a checkpoint's.
void write_atomically(const std::string& path, const std::string& bytes) {
  try {
    write_file_atomically(path, bytes, /*durable=*/true);
  } catch (const std::runtime_error& e) {
    throw CheckpointError("cannot save checkpoint " + path + ": " + e.what());
  }
}

std::string read_file(const std::string& path) {
  try {
    return read_whole_file(path);
  } catch (const FileReadError& e) {
    throw CheckpointError("cannot load checkpoint " + path + ": " + e.what());
  }
}

std::string hex32(uint32_t x) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", x);
  return buf;
}

}  // namespace

void export_optimizer_state(const OptimizerSnapshot& snapshot, const NetworkSpec& net,
                            threadsplit::OptimizerState* out) {
  for (const auto& slot : snapshot.slots) {
    if (slot.values.size() != net.num_params) {
      throw std::invalid_argument("optimizer slot '" + slot.name + "' holds " +
                                  std::to_string(slot.values.size()) + " values, network '" +
                                  net.name + "' has " + std::to_string(net.num_params));
    }
  }
  const OptimizerConfig& c = snapshot.config;
  out->Clear();
  out->set_kind(c.kind);
  out->set_learning_rate(c.learning_rate);
  out->set_beta1(c.beta1);
  out->set_beta2(c.beta2);
  out->set_epsilon(c.epsilon);
  out->set_momentum(c.momentum);
  out->set_iterations(snapshot.iterations);
  for (const ParamSpec& p : net.params) {
    for (const auto& slot : snapshot.slots) {
      set_tensor(out->add_slots(), p.name + "/" + slot.name, p, slot.values.data() + p.offset);
    }
  }
}

OptimizerSnapshot import_optimizer_state(const threadsplit::OptimizerState& state,
                                         const NetworkSpec& net) {
  OptimizerSnapshot snap;
  snap.config.kind = state.kind();
  snap.config.learning_rate = state.learning_rate();
  snap.config.beta1 = state.beta1();
  snap.config.beta2 = state.beta2();
  snap.config.epsilon = state.epsilon();
  snap.config.momentum = state.momentum();
  // The slots name the forms the file does not record as settings: PyTorch's Nesterov buffer
  // and the lookahead EMA (their hyper-parameters are the resuming run's, see restore).
  for (const auto& t : state.slots()) {
    const std::string& name = t.name();
    const size_t slash = name.rfind('/');
    const std::string slot = slash == std::string::npos ? "" : name.substr(slash + 1);
    if (slot == "momentum_buffer") snap.config.nesterov = true;
    if (slot == "lookahead") snap.config.lookahead_every = 1;
  }
  try {
    snap.config.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("optimizer settings are invalid: ") + e.what());
  }
  if (state.iterations() < 0) {
    throw std::invalid_argument("optimizer iterations is negative (" +
                                std::to_string(state.iterations()) + ")");
  }
  snap.iterations = state.iterations();
  std::vector<WantedTensor> wanted;
  for (const auto& name : slot_names(snap.config)) {
    snap.slots.push_back({name, std::vector<float>(net.num_params)});
  }
  for (const ParamSpec& p : net.params) {
    for (auto& slot : snap.slots) {
      wanted.push_back({p.name + "/" + slot.name, &p, slot.values.data() + p.offset});
    }
  }
  read_tensors(state.slots(), wanted, "optimizer slot", net.name);
  return snap;
}

void save_checkpoint(const std::string& path, const NetworkSpec& net, const TrainingState& state,
                     const Optimizer* optimizer) {
  if (!state.model.empty() && state.model != net.name) {
    throw std::invalid_argument("save_checkpoint: state is for model '" + state.model +
                                "', network is '" + net.name + "'");
  }
  if (state.params.size() != net.num_params) {
    throw std::invalid_argument("save_checkpoint: " + std::to_string(state.params.size()) +
                                " parameters given, network '" + net.name + "' has " +
                                std::to_string(net.num_params));
  }
  threadsplit::Checkpoint ckpt;
  ckpt.set_format_version(kCheckpointFormatVersion);
  ckpt.set_model(net.name);
  ckpt.set_step(state.step);
  ckpt.set_epoch(state.epoch);
  ckpt.set_step_in_epoch(state.step_in_epoch);
  ckpt.set_seed(state.seed);
  for (const ParamSpec& p : net.params) {
    set_tensor(ckpt.add_params(), p.name, p, state.params.data() + p.offset);
  }
  if (optimizer) {
    export_optimizer_state(optimizer->snapshot(), net, ckpt.mutable_optimizer());
  } else if (state.optimizer) {
    export_optimizer_state(*state.optimizer, net, ckpt.mutable_optimizer());
  }
  ckpt.set_config_json(state.config_json);
  ckpt.set_lineage(state.lineage);

  // crc32 is the CRC-32 of the message serialized with crc32 = 0 (field absent).
  std::string bytes;
  if (!ckpt.SerializeToString(&bytes)) {
    throw CheckpointError("cannot save checkpoint " + path + ": serialization failed");
  }
  ckpt.set_crc32(checkpoint_crc32(bytes));
  bytes.clear();
  if (!ckpt.SerializeToString(&bytes)) {
    throw CheckpointError("cannot save checkpoint " + path + ": serialization failed");
  }
  write_atomically(path, bytes);
}

CheckpointLabel read_checkpoint_label(const std::string& path) {
  const std::string bytes = read_file(path);
  threadsplit::Checkpoint ckpt;
  if (bytes.empty() || !ckpt.ParseFromString(bytes))
    throw CheckpointError("cannot read checkpoint " + path + ": not a threadsplit checkpoint, or truncated");
  return CheckpointLabel{ckpt.model(), ckpt.step(), ckpt.lineage()};
}

TrainingState load_checkpoint(const std::string& path, const NetworkSpec& expect) {
  const std::string what = "cannot load checkpoint " + path + ": ";
  const std::string bytes = read_file(path);
  if (bytes.empty()) throw CheckpointError(what + "the file is empty");

  threadsplit::Checkpoint ckpt;
  if (!ckpt.ParseFromString(bytes)) {
    throw CheckpointError(what + "not a threadsplit checkpoint, or truncated (parse failed)");
  }
  if (ckpt.format_version() == 0 && ckpt.model().empty()) {
    throw CheckpointError(what + "not a threadsplit checkpoint (no format_version, no model)");
  }
  const uint32_t stored = ckpt.crc32();
  ckpt.set_crc32(0);
  std::string canonical;
  ckpt.SerializeToString(&canonical);
  const uint32_t computed = checkpoint_crc32(canonical);
  if (stored != computed) {
    throw CheckpointError(what + "the file is damaged or truncated (CRC-32 stored " +
                          hex32(stored) + ", computed " + hex32(computed) + ")");
  }
  if (ckpt.format_version() != kCheckpointFormatVersion) {
    throw CheckpointError(what + "unsupported format_version " +
                          std::to_string(ckpt.format_version()) + " (this build reads " +
                          std::to_string(kCheckpointFormatVersion) + ")");
  }
  if (ckpt.model() != expect.name) {
    throw CheckpointError(what + "it holds model '" + ckpt.model() + "', this run uses '" +
                          expect.name + "'");
  }
  if (ckpt.step() < 0 || ckpt.epoch() < 0 || ckpt.step_in_epoch() < 0) {
    throw CheckpointError(what + "negative step counters (step " + std::to_string(ckpt.step()) +
                          ", epoch " + std::to_string(ckpt.epoch()) + ", step_in_epoch " +
                          std::to_string(ckpt.step_in_epoch()) + ")");
  }

  TrainingState state;
  state.model = ckpt.model();
  state.step = ckpt.step();
  state.epoch = ckpt.epoch();
  state.step_in_epoch = ckpt.step_in_epoch();
  state.seed = ckpt.seed();
  state.config_json = ckpt.config_json();
  state.lineage = ckpt.lineage();
  state.params.resize(expect.num_params);
  std::vector<WantedTensor> wanted;
  for (const ParamSpec& p : expect.params) {
    wanted.push_back({p.name, &p, state.params.data() + p.offset});
  }
  try {
    read_tensors(ckpt.params(), wanted, "parameter", expect.name);
    if (ckpt.has_optimizer()) state.optimizer = import_optimizer_state(ckpt.optimizer(), expect);
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(what + e.what());
  }
  return state;
}

}  // namespace ts
