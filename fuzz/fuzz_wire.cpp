// libFuzzer: the coordinator's checks on what a worker sends (common/wire_checks.h) and the
// float unpacking behind them, fed arbitrary bytes parsed as a WorkerMessage. A message the
// checks accept must really be safe for the training loop: sizes as promised, values finite.
#include <cmath>
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "float_packing.h"
#include "grpc_settings.h"
#include "trainer.pb.h"
#include "wire_checks.h"

// Protobuf logs every invalid UTF-8 string it parses; at fuzzing rates that is most of the
// time spent.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  threadsplit::WorkerMessage m;
  if (!m.ParseFromArray(data, int(size))) return 0;
  ts::WireLimits limits;
  limits.run_id = "fuzzrun";
  limits.num_params = 16;
  limits.max_samples = 64;
  limits.world_size = 4;
  if (m.has_hello()) ts::check_hello_message(m.hello(), ts::kProtocolVersion);
  bool nonfinite = false;
  const std::string bad = ts::check_worker_message(m, limits, &nonfinite);
  if (nonfinite && bad.empty()) std::abort();  // a non-finite gradient must be refused
  if (bad.empty() && m.has_step()) {
    const auto& r = m.step();
    if (r.run_id() != limits.run_id || r.samples() < 0 || r.samples() > limits.max_samples) std::abort();
    if (!r.gradient().empty()) {
      std::vector<float> g(limits.num_params);
      // Accepted means unpackable: exactly num_params finite floats.
      if (!ts::unpack_floats(r.gradient(), limits.num_params, g.data(), "gradient").empty()) std::abort();
      for (float x : g)
        if (!std::isfinite(x)) std::abort();
    }
  }
  return 0;
}
