// The coordinator's checks on what arrives from a worker's stream, before the training loop
// sees it: pure functions of the message and the run's limits, so they can be fuzzed
// (fuzz/) and unit-tested without a server. Each returns "" when the message is acceptable,
// else one sentence saying what is wrong. Checks that need the loop's state (the step
// number, the dealt share, the deal id) stay in coordinator/training_run.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "trainer.pb.h"

namespace ts {

// What this build is: the project version and a fingerprint of every network description,
// so a worker built from other sources is refused at Hello rather than failing later.
std::string threadsplit_version();
std::string networks_fingerprint();

struct WireLimits {
  std::string run_id;
  size_t num_params = 0;        // floats in a gradient
  int max_samples = 0;          // the largest share a worker is ever dealt (or evaluates)
  int world_size = 0;
};

// A Hello's shape, before the token and rank are looked at: protocol, build, sizes.
std::string check_hello_message(const threadsplit::Hello& h, unsigned protocol_version);

// Any message after Hello: its kind, run id, sizes and, for a gradient, finite values. A
// non-finite gradient is reported with `nonfinite` set: the run stops rather than the worker.
std::string check_worker_message(const threadsplit::WorkerMessage& m, const WireLimits& limits,
                                 bool* nonfinite);

}  // namespace ts
