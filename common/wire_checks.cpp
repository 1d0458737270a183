#include "wire_checks.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include <zlib.h>

#include "float_packing.h"
#include "network.h"

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

std::string check_hello_message(const threadsplit::Hello& h, unsigned protocol_version) {
  if (h.protocol_version() != protocol_version)
    return "protocol version " + std::to_string(h.protocol_version()) + " (this coordinator speaks " +
           std::to_string(protocol_version) + "): use matching builds";
  // Workers that predate these fields send them empty; a value that differs is refused.
  if (!h.versions().threadsplit().empty() && h.versions().threadsplit() != threadsplit_version())
    return "the worker is threadsplit " + h.versions().threadsplit() + ", this coordinator is " +
           threadsplit_version() + ": use matching builds";
  if (!h.versions().networks().empty() && h.versions().networks() != networks_fingerprint())
    return "the worker's network descriptions (fingerprint " + h.versions().networks() +
           ") differ from this coordinator's (" + networks_fingerprint() +
           "): it was built from other sources; use matching builds";
  if (h.run_token().size() > 1024) return "a run token of " + std::to_string(h.run_token().size()) + " bytes";
  if (h.rank() < -1) return "rank " + std::to_string(h.rank());
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
      if (r.run_id() != limits.run_id) return "a step result of run '" + r.run_id().substr(0, 64) + "'";
      if (r.step() < 0) return "a step result for step " + std::to_string(r.step());
      if (r.samples() < 0 || r.samples() > limits.max_samples)
        return "a step result for " + std::to_string(r.samples()) + " samples (at most " +
               std::to_string(limits.max_samples) + " are ever dealt)";
      if (r.correct() < 0 || r.correct() > r.samples())
        return "a step result with " + std::to_string(r.correct()) + " correct of " +
               std::to_string(r.samples());
      if (!std::isfinite(r.loss_sum()) || r.loss_sum() < 0)
        return "a step result with loss sum " + std::to_string(r.loss_sum());
      const size_t want = limits.num_params * sizeof(float);
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
      if (r.run_id() != limits.run_id) return "an evaluation result of run '" + r.run_id().substr(0, 64) + "'";
      if (r.round() < 0 || r.samples() < 0 || r.correct() < 0 || r.correct() > r.samples() ||
          !std::isfinite(r.loss_sum()) || r.loss_sum() < 0)
        return "an evaluation result with impossible counts or loss";
      return "";
    }
    case threadsplit::WorkerMessage::kGoodbye:
      if (m.goodbye().run_id() != limits.run_id) return "a Goodbye of another run";
      return "";
    default:
      return "an empty message";
  }
}

}  // namespace ts
