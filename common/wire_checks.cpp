#include "wire_checks.h"

#include "model_source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <stdexcept>
#include <utility>

#include <zlib.h>

#include "augment.h"
#include "float_packing.h"
#include "network.h"
#include "secrets.h"

#ifndef THREADSPLIT_VERSION
#define THREADSPLIT_VERSION "unknown"
#endif

namespace ts {

std::string threadsplit_version() { return THREADSPLIT_VERSION; }

std::string networks_fingerprint() {
  static const std::string fingerprint = [] {
    std::string text;
    for (const std::string& name : network_names()) {
      const NetworkSpec net = build_network(name);
      text += net.name + ":" + std::to_string(net.num_params) + ";";
      for (const ParamSpec& p : net.params) {
        text += p.name + "@" + std::to_string(p.offset) + "[";
        for (int64_t d : p.shape) text += std::to_string(d) + ",";
        text += "]";
      }
      text += "\n";
    }
    char hex[16];
    std::snprintf(hex, sizeof hex, "%08x", unsigned(crc32(0L, reinterpret_cast<const Bytef*>(text.data()), uInt(text.size()))));
    return std::string(hex);
  }();
  return fingerprint;
}

std::string echo(const std::string& s, size_t max_bytes) {
  std::string out = s.substr(0, std::min(s.size(), max_bytes));
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  if (s.size() > max_bytes) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

const char* worker_message_kind(const threadsplit::WorkerMessage& m) {
  switch (m.body_case()) {
    case threadsplit::WorkerMessage::kHello: return "a Hello";
    case threadsplit::WorkerMessage::kStep: return "a step result";
    case threadsplit::WorkerMessage::kEval: return "an evaluation result";
    case threadsplit::WorkerMessage::kGoodbye: return "a Goodbye";
    case threadsplit::WorkerMessage::kBucket: return "a gradient bucket";
    default: return "an empty message";
  }
}

std::string check_hello_token(const threadsplit::Hello& h, const std::string& token) {
  // A token of the wrong length is wrong; same_secret's time depends only on the lengths.
  if (h.run_token().size() != token.size() || !same_secret(h.run_token(), token))
    return "wrong run token (THREADSPLIT_TOKEN must be the coordinator's)";
  return "";
}

namespace {

// The first field of a Hello over its bound (wire_checks.h), in words; "" when all fit.
std::string oversized_hello_field(const threadsplit::Hello& h) {
  const threadsplit::Binding& b = h.binding();
  const threadsplit::Versions& v = h.versions();
  const std::pair<const char*, const std::string*> names[] = {
      {"model", &h.model()},           {"run id", &h.run_id()},
      {"data fingerprint", &h.data_fingerprint()},
      {"hostname", &b.hostname()},     {"OpenMP binding", &b.omp_proc_bind()},
      {"oneDNN version", &v.onednn()}, {"gRPC version", &v.grpc()},
      {"protobuf version", &v.protobuf()}, {"compiler", &v.compiler()},
      {"threadsplit version", &v.threadsplit()}, {"network fingerprint", &v.networks()}};
  for (const auto& [name, value] : names)
    if (value->size() > kHelloStringBytes)
      return "a Hello whose " + std::string(name) + " is " + std::to_string(value->size()) +
             " bytes (at most " + std::to_string(kHelloStringBytes) + "): " + echo(*value);
  if (b.omp_places().size() > kHelloPlacesBytes)
    return "a Hello whose OpenMP places are " + std::to_string(b.omp_places().size()) + " bytes (at most " +
           std::to_string(kHelloPlacesBytes) + ")";
  if (b.cores_size() > kHelloListEntries || b.omp_thread_cores_size() > kHelloListEntries)
    return "a Hello listing " + std::to_string(std::max(b.cores_size(), b.omp_thread_cores_size())) +
           " cores or threads (at most " + std::to_string(kHelloListEntries) + ")";
  for (const std::string& c : b.omp_thread_cores())
    if (c.size() > kHelloPlacesBytes)
      return "a Hello with a thread's core list of " + std::to_string(c.size()) + " bytes (at most " +
             std::to_string(kHelloPlacesBytes) + ")";
  const size_t bytes = h.ByteSizeLong();
  if (bytes > kHelloBytes)
    return "a Hello of " + std::to_string(bytes) + " bytes (at most " + std::to_string(kHelloBytes) + ")";
  return "";
}

}  // namespace

std::string check_hello_message(const threadsplit::Hello& h, unsigned protocol_version) {
  if (h.protocol_version() != protocol_version)
    return "protocol version " + std::to_string(h.protocol_version()) + " (this coordinator speaks " +
           std::to_string(protocol_version) + "): use matching builds";
  const std::string oversized = oversized_hello_field(h);
  if (!oversized.empty()) return oversized;
  // Workers that predate these fields send them empty; a value that differs is refused.
  if (!h.versions().threadsplit().empty() && h.versions().threadsplit() != threadsplit_version())
    return "the worker is threadsplit " + echo(h.versions().threadsplit()) + ", this coordinator is " +
           threadsplit_version() + ": use matching builds";
  if (!h.versions().networks().empty() && h.versions().networks() != networks_fingerprint())
    return "the worker's network descriptions (fingerprint " + echo(h.versions().networks()) +
           ") differ from this coordinator's (" + networks_fingerprint() +
           "): it was built from other sources; use matching builds";
  if (h.run_token().size() > 1024) return "a run token of " + std::to_string(h.run_token().size()) + " bytes";
  if (h.rank() < -1) return "rank " + std::to_string(h.rank());
  return "";
}

std::string check_message_order(const threadsplit::WorkerMessage& m, bool dealt, bool eval_requested) {
  if (m.has_step() && !dealt)
    return "a step result (step " + std::to_string(m.step().step()) +
           ") before this worker was dealt any step";
  if (m.has_bucket() && !dealt)
    return "a gradient bucket (step " + std::to_string(m.bucket().step()) +
           ") before this worker was dealt any step";
  if (m.has_eval() && !eval_requested)
    return "an evaluation result (round " + std::to_string(m.eval().round()) +
           ") before this worker was asked to evaluate";
  return "";
}

std::string check_worker_message(const threadsplit::WorkerMessage& m, const WireLimits& limits,
                                 bool* nonfinite) {
  *nonfinite = false;
  switch (m.body_case()) {
    case threadsplit::WorkerMessage::kHello:
      return "a second Hello";
    case threadsplit::WorkerMessage::kStep: {
      const threadsplit::StepResult& r = m.step();
      if (r.run_id() != limits.run_id) return "a step result of run '" + echo(r.run_id()) + "'";
      if (r.step() < 0) return "a step result for step " + std::to_string(r.step());
      if (r.samples() < 0 || r.samples() > limits.max_samples)
        return "a step result for " + std::to_string(r.samples()) + " samples (at most " +
               std::to_string(limits.max_samples) + " are ever dealt)";
      if (r.correct() < 0 || r.correct() > r.samples())
        return "a step result with " + std::to_string(r.correct()) + " correct of " +
               std::to_string(r.samples());
      if (!std::isfinite(r.loss_sum())) {
        *nonfinite = true;  // what a diverged run looks like, not a broken wire
        return "a step result with loss sum " + std::to_string(r.loss_sum()) + " (a non-finite loss)";
      }
      if (r.loss_sum() < 0) return "a step result with loss sum " + std::to_string(r.loss_sum());
      const size_t want = limits.num_params * sizeof(float);
      if (r.buckets() < 0 || (r.buckets() > 0 && (r.samples() == 0 || !r.gradient().empty())))
        return "a step result announcing " + std::to_string(r.buckets()) + " gradient buckets for " +
               std::to_string(r.samples()) + " samples with " + std::to_string(r.gradient().size()) +
               " gradient bytes of its own";
      if (r.buckets() > 0) return "";  // the gradient came in its buckets, checked as they came
      if (r.in_shared_memory()) {      // in its slot of the data plane, checked by the gather
        if (!r.gradient().empty() || r.samples() == 0)
          return "a step result with its gradient in shared memory and " + std::to_string(r.gradient().size()) +
                 " gradient bytes of its own for " + std::to_string(r.samples()) + " samples";
        return "";
      }
      if (r.samples() == 0 ? !r.gradient().empty() && r.gradient().size() != want
                           : r.gradient().size() != want)
        return "a gradient of " + std::to_string(r.gradient().size()) + " bytes instead of " +
               std::to_string(want);
      const size_t n = r.gradient().size() / sizeof(float);
      const size_t bad = first_nonfinite(r.gradient().data(), n);
      if (bad < n) {
        float x;
        std::memcpy(&x, r.gradient().data() + bad * sizeof(float), sizeof x);
        *nonfinite = true;
        return "a non-finite gradient (" + std::to_string(x) + " at index " + std::to_string(bad) + ")";
      }
      return "";
    }
    case threadsplit::WorkerMessage::kEval: {
      const threadsplit::EvalResult& r = m.eval();
      if (r.run_id() != limits.run_id) return "an evaluation result of run '" + echo(r.run_id()) + "'";
      if (!std::isfinite(r.loss_sum())) {
        *nonfinite = true;
        return "an evaluation result with loss sum " + std::to_string(r.loss_sum()) + " (a non-finite loss)";
      }
      if (r.round() < 0 || r.samples() < 0 || r.correct() < 0 || r.correct() > r.samples() ||
          r.loss_sum() < 0)
        return "an evaluation result with impossible counts or loss";
      return "";
    }
    case threadsplit::WorkerMessage::kGoodbye:
      if (m.goodbye().run_id() != limits.run_id) return "a Goodbye of another run";
      return "";
    case threadsplit::WorkerMessage::kBucket: {
      // Its index and size against the bucket plan are checked in the gather (collective.cpp).
      const threadsplit::GradientBucket& b = m.bucket();
      if (b.run_id() != limits.run_id) return "a gradient bucket of run '" + echo(b.run_id()) + "'";
      if (b.step() < 0 || b.bucket() < 0)
        return "a gradient bucket " + std::to_string(b.bucket()) + " for step " + std::to_string(b.step());
      const size_t bytes = b.gradient().size();
      if (bytes == 0 || bytes % sizeof(float) != 0 || bytes > limits.num_params * sizeof(float))
        return "a gradient bucket of " + std::to_string(bytes) + " bytes (a whole number of floats, at most " +
               std::to_string(limits.num_params) + ")";
      const size_t n = bytes / sizeof(float);
      const size_t bad = first_nonfinite(b.gradient().data(), n);
      if (bad < n) {
        float x;
        std::memcpy(&x, b.gradient().data() + bad * sizeof(float), sizeof x);
        *nonfinite = true;
        return "a non-finite gradient (" + std::to_string(x) + " at index " + std::to_string(bad) +
               " of bucket " + std::to_string(b.bucket()) + ")";
      }
      return "";
    }
    default:
      return "an empty message";
  }
}

namespace {

// Packed parameters that are not exactly n finite floats, in unpack_floats' words.
std::string packed_params_problem(const std::string& bytes, size_t n) {
  if (bytes.size() != n * sizeof(float))
    return "the parameters has " + std::to_string(bytes.size()) + " bytes, expected " +
           std::to_string(n * sizeof(float)) + " (" + std::to_string(n) + " floats)";
  const size_t bad = first_nonfinite(bytes.data(), n);
  if (bad == n) return "";
  float x;
  std::memcpy(&x, bytes.data() + bad * sizeof(float), sizeof x);
  return "the parameters holds a non-finite value (" + std::to_string(x) + ") at position " +
         std::to_string(bad);
}

std::string check_welcome(const threadsplit::Welcome& w) {
  try {
    network_for(w.model(), w.model_onnx());
    parse_augment(w.augment());
  } catch (const std::invalid_argument& e) {
    return std::string("the coordinator's Welcome: ") + e.what();
  }
  if (w.max_local_batch() < 1 || w.loader_threads() < 1)
    return "the coordinator's Welcome has no batch size or loader threads";
  if (!w.precision().empty() && w.precision() != "f32" && w.precision() != "bf16")
    return "the coordinator's Welcome asks for precision '" + w.precision() + "' (this worker has f32 and bf16)";
  if (!(w.label_smoothing() >= 0 && w.label_smoothing() < 1))
    return "the coordinator's Welcome has label smoothing " + std::to_string(w.label_smoothing()) +
           ", outside [0, 1)";
  if (w.bn_group() < 0 || w.bn_group() == 1 || w.bn_group() > w.max_local_batch())
    return "the coordinator's Welcome has a batch-norm group of " + std::to_string(w.bn_group()) +
           " (0, or 2.." + std::to_string(w.max_local_batch()) + ")";
  return "";
}

std::string check_deal(const threadsplit::EpochDeal& d, const WorkerWireLimits& limits, int64_t step) {
  if (d.run_id() != limits.run_id || d.first_step() != step)
    return "the coordinator dealt steps from " + std::to_string(d.first_step()) + " of run '" +
           d.run_id() + "'; expected step " + std::to_string(step) + " of run " + limits.run_id;
  for (const threadsplit::StepShare& share : d.steps())
    if (share.indices_size() > limits.max_local_batch ||
        share.global_batch() < share.indices_size() || share.global_batch() < 1)
      return "the coordinator dealt " + std::to_string(share.indices_size()) +
             " samples of a global batch of " + std::to_string(share.global_batch()) +
             " (this worker takes at most " + std::to_string(limits.max_local_batch) + ")";
  return "";
}

std::string check_eval(const threadsplit::EvalRequest& r, const WorkerWireLimits& limits) {
  if (r.split() != "validation" && r.split() != "test")
    return "the coordinator asked to evaluate an unknown split '" + r.split() + "'";
  if (r.run_id() != limits.run_id || r.batch() < 1)
    return "the coordinator sent an evaluation request that does not fit this run";
  if (r.tta_level() < 0 || r.tta_level() > 2)
    return "the coordinator asked for test-time augmentation level " + std::to_string(r.tta_level()) +
           " (this worker has 0, 1 and 2)";
  return "";
}

std::string check_params(const threadsplit::Params& p, const WorkerWireLimits& limits, int64_t step) {
  if (p.run_id() != limits.run_id || p.step() != step)
    return "expected the parameters of step " + std::to_string(step) +
           " but the coordinator sent something else";
  // In the data plane's parameter region: the coordinator's guard found them finite.
  if (p.in_shared_memory())
    return p.params().empty() ? "" : "the coordinator sent parameters both in shared memory and in the message";
  const std::string bad = packed_params_problem(p.params(), limits.num_params);
  if (!bad.empty())
    return "the coordinator sent bad parameters after step " + std::to_string(step) + ": " + bad;
  return "";
}

std::string check_shutdown(const threadsplit::Shutdown& s, const WorkerWireLimits& limits) {
  if (s.run_id() != limits.run_id)
    return "the coordinator sent a Shutdown of run '" + s.run_id() + "'; this worker is in run " +
           limits.run_id;
  return "";
}

}  // namespace

std::string check_coordinator_message(const threadsplit::CoordinatorMessage& m,
                                      const WorkerWireLimits& limits, WorkerWaitsFor waits,
                                      int64_t step) {
  using threadsplit::CoordinatorMessage;
  switch (waits) {
    case WorkerWaitsFor::kWelcome:
      if (!m.has_welcome()) return "the coordinator's first message was not a Welcome";
      return check_welcome(m.welcome());
    case WorkerWaitsFor::kInstruction:
      switch (m.body_case()) {
        case CoordinatorMessage::kDeal: return check_deal(m.deal(), limits, step);
        case CoordinatorMessage::kEval: return check_eval(m.eval(), limits);
        case CoordinatorMessage::kShutdown: return check_shutdown(m.shutdown(), limits);
        default: return "the coordinator sent an unexpected message between steps";
      }
    case WorkerWaitsFor::kParams:
      switch (m.body_case()) {
        case CoordinatorMessage::kParams: return check_params(m.params(), limits, step);
        case CoordinatorMessage::kDeal: return check_deal(m.deal(), limits, step);
        case CoordinatorMessage::kShutdown: return check_shutdown(m.shutdown(), limits);
        default:
          return "expected the parameters of step " + std::to_string(step) +
                 " but the coordinator sent something else";
      }
  }
  return "an unknown wait";  // not reached: every WorkerWaitsFor is handled above
}

std::string check_welcome_params(const threadsplit::Welcome& w, size_t num_params) {
  const std::string bad = packed_params_problem(w.params(), num_params);
  return bad.empty() ? "" : "the coordinator sent bad parameters: " + bad;
}

}  // namespace ts
