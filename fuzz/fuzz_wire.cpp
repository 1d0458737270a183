// libFuzzer: both directions' checks on the wire (common/wire_checks.h) and the float
// unpacking behind them, fed arbitrary bytes parsed as a WorkerMessage (the coordinator's
// checks, the door's included: the token first, bounded Hello fields, cut echoes, results
// only after their deal) and as a CoordinatorMessage (the worker's, for each thing it may wait for). A message
// the checks accept must really be safe for the loop that takes it: of a kind it handles,
// sizes as promised, values finite.
#include <cmath>
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "augment.h"
#include "float_packing.h"
#include "grpc_settings.h"
#include "network.h"
#include "trainer.pb.h"
#include "wire_checks.h"

// Protobuf logs every invalid UTF-8 string it parses; at fuzzing rates that is most of the
// time spent.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

namespace {

// An echo is short and printable, whatever it was given.
void check_echo(const std::string& s) {
  const std::string e = ts::echo(s);
  if (e.size() > ts::kEchoBytes + 32) std::abort();
  for (char c : e)
    if (c < 0x20 || c > 0x7e) std::abort();
  if (s.size() <= ts::kEchoBytes && e.size() != s.size()) std::abort();
}

// What the coordinator keeps of an admitted Hello is bounded: every string and list.
void check_accepted_hello(const threadsplit::Hello& h) {
  const auto& b = h.binding();
  const auto& v = h.versions();
  for (const std::string* s : {&h.model(), &h.run_id(), &h.data_fingerprint(), &b.hostname(),
                               &b.omp_proc_bind(), &v.onednn(), &v.grpc(), &v.protobuf(), &v.compiler(),
                               &v.threadsplit(), &v.networks()})
    if (s->size() > ts::kHelloStringBytes) std::abort();
  if (b.omp_places().size() > ts::kHelloPlacesBytes) std::abort();
  if (b.cores_size() > ts::kHelloListEntries || b.omp_thread_cores_size() > ts::kHelloListEntries) std::abort();
  for (const std::string& c : b.omp_thread_cores())
    if (c.size() > ts::kHelloPlacesBytes) std::abort();
  if (h.ByteSizeLong() > ts::kHelloBytes) std::abort();
  if (h.protocol_version() != ts::kProtocolVersion || h.rank() < -1 || h.run_token().size() > 1024) std::abort();
}

void check_from_worker(const uint8_t* data, size_t size) {
  threadsplit::WorkerMessage m;
  if (!m.ParseFromArray(data, int(size))) return;
  ts::WireLimits limits;
  limits.run_id = "fuzzrun";
  limits.num_params = 16;
  limits.max_samples = 64;
  limits.world_size = 4;
  if (m.has_hello()) {
    const threadsplit::Hello& h = m.hello();
    // The token decides alone: only the run's own is accepted, and the refusal is one fixed sentence.
    const std::string token = ts::check_hello_token(h, "fuzz-token");
    if (token.empty() != (h.run_token() == "fuzz-token")) std::abort();
    if (!token.empty() && token.size() > 100) std::abort();
    const std::string shape = ts::check_hello_message(h, ts::kProtocolVersion);
    if (shape.empty()) check_accepted_hello(h);
    if (shape.size() > 400) std::abort();  // every echo in it was cut
    check_echo(h.versions().threadsplit());
    check_echo(h.binding().hostname());
  }
  for (bool dealt : {false, true})
    for (bool eval : {false, true})
      if (ts::check_message_order(m, dealt, eval).empty() && ((m.has_step() && !dealt) || (m.has_eval() && !eval)))
        std::abort();
  bool nonfinite = false;
  const std::string bad = ts::check_worker_message(m, limits, &nonfinite);
  if (nonfinite && bad.empty()) std::abort();
  if (bad.size() > 400) std::abort();  // run ids from the wire are echoed cut  // a non-finite gradient must be refused
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
}

// What the worker's loop relies on once check_coordinator_message accepted m.
void check_accepted_by_worker(const threadsplit::CoordinatorMessage& m, const ts::WorkerWireLimits& limits,
                              ts::WorkerWaitsFor waits, int64_t step) {
  using threadsplit::CoordinatorMessage;
  switch (m.body_case()) {
    case CoordinatorMessage::kWelcome: {
      if (waits != ts::WorkerWaitsFor::kWelcome) std::abort();
      const threadsplit::Welcome& w = m.welcome();
      if (w.max_local_batch() < 1 || w.loader_threads() < 1) std::abort();
      try {  // join() builds both without a guard
        ts::build_network(w.model());
        ts::parse_augment(w.augment());
      } catch (const std::invalid_argument&) {
        std::abort();
      }
      return;
    }
    case CoordinatorMessage::kDeal: {
      if (waits == ts::WorkerWaitsFor::kWelcome) std::abort();
      const threadsplit::EpochDeal& d = m.deal();
      if (d.run_id() != limits.run_id || d.first_step() != step) std::abort();
      for (const threadsplit::StepShare& s : d.steps())  // a share fits the model and its loss scale
        if (s.indices_size() > limits.max_local_batch || s.global_batch() < 1 ||
            s.global_batch() < s.indices_size())
          std::abort();
      return;
    }
    case CoordinatorMessage::kEval: {
      if (waits != ts::WorkerWaitsFor::kInstruction) std::abort();
      const threadsplit::EvalRequest& r = m.eval();
      if (r.run_id() != limits.run_id || r.batch() < 1) std::abort();
      if (r.split() != "validation" && r.split() != "test") std::abort();
      return;
    }
    case CoordinatorMessage::kParams: {
      if (waits != ts::WorkerWaitsFor::kParams) std::abort();
      const threadsplit::Params& p = m.params();
      if (p.run_id() != limits.run_id || p.step() != step) std::abort();
      // Accepted means installable by a plain copy: exactly num_params finite floats.
      std::vector<float> v(limits.num_params);
      if (!ts::unpack_floats(p.params(), limits.num_params, v.data(), "parameters").empty()) std::abort();
      for (float x : v)
        if (!std::isfinite(x)) std::abort();
      return;
    }
    case CoordinatorMessage::kShutdown:
      if (waits == ts::WorkerWaitsFor::kWelcome || m.shutdown().run_id() != limits.run_id) std::abort();
      return;
    default:
      std::abort();  // no wait takes an empty message
  }
}

void check_from_coordinator(const uint8_t* data, size_t size) {
  threadsplit::CoordinatorMessage m;
  if (!m.ParseFromArray(data, int(size))) return;
  ts::WorkerWireLimits limits;
  limits.run_id = "fuzzrun";
  limits.num_params = 16;
  limits.max_local_batch = 64;
  const int64_t step = 5;
  for (ts::WorkerWaitsFor waits :
       {ts::WorkerWaitsFor::kWelcome, ts::WorkerWaitsFor::kInstruction, ts::WorkerWaitsFor::kParams})
    if (ts::check_coordinator_message(m, limits, waits, step).empty())
      check_accepted_by_worker(m, limits, waits, step);
  if (m.has_welcome() && ts::check_welcome_params(m.welcome(), limits.num_params).empty()) {
    std::vector<float> v(limits.num_params);
    if (!ts::unpack_floats(m.welcome().params(), limits.num_params, v.data(), "parameters").empty())
      std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_from_worker(data, size);
  check_from_coordinator(data, size);
  return 0;
}
