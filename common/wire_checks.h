// The checks on what arrives over a worker's stream, before either side's loop sees it: the
// coordinator's on a worker's messages, the worker's on the coordinator's. Pure functions of
// the message and the run's limits, so they can be fuzzed (fuzz/) and unit-tested without a
// server. Each returns "" when the message is acceptable, else one sentence saying what is
// wrong. The coordinator's checks that need its loop's state (the step number, the dealt
// share, the deal id) are in coordinator/collective.cpp's gather; the worker's few (the step it
// expects, what it waits for) are parameters.
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

// --- Before authentication ---
// A Hello is read before anyone knows who sent it: the token is checked before anything else
// in it, and whatever of it appears in a refusal, a log line or the report goes through
// echo(), so a Hello of megabytes costs a line of at most ~100 bytes.

// At most kEchoBytes of `s`, bytes outside printable ASCII as '?'; when cut, "..." and the
// real length follow ("abc... (10485760 bytes)").
constexpr size_t kEchoBytes = 64;
std::string echo(const std::string& s, size_t max_bytes = kEchoBytes);

// What a Hello may hold, so that what an admitted worker leaves in the coordinator's memory
// and report is bounded too: names (hostname, versions, model, run id, fingerprints) of at
// most kHelloStringBytes; OpenMP places and each thread's core list ("{0},{1},...", long
// on a machine of thousands of cores) of at most kHelloPlacesBytes; at most
// kHelloListEntries cores and threads; and kHelloBytes in all.
constexpr size_t kHelloStringBytes = 256;
constexpr size_t kHelloPlacesBytes = 64 << 10;
constexpr int kHelloListEntries = 65536;
constexpr size_t kHelloBytes = 1 << 20;

// "a step result", "an evaluation result", ... for messages that name what arrived.
const char* worker_message_kind(const threadsplit::WorkerMessage& m);

// The run token, first and alone: "" when it is the run's (compared in constant time).
std::string check_hello_token(const threadsplit::Hello& h, const std::string& token);

// A Hello's shape, after the token and before the rank is looked at: protocol, build, sizes.
std::string check_hello_message(const threadsplit::Hello& h, unsigned protocol_version);

// The order of what a worker sends after Hello: a step result only once it was dealt steps
// (an EpochDeal), an evaluation result only once it was asked for one (an EvalRequest);
// Goodbye (and the second Hello that check_worker_message refuses) at any time.
std::string check_message_order(const threadsplit::WorkerMessage& m, bool dealt, bool eval_requested);

// Any message after Hello: its kind, run id, sizes and, for a gradient, finite values. A
// non-finite gradient or loss (step or evaluation) is reported with `nonfinite` set: that is
// how a diverged run looks, so the run stops as diverged rather than blaming the worker.
std::string check_worker_message(const threadsplit::WorkerMessage& m, const WireLimits& limits,
                                 bool* nonfinite);

// --- The worker's side ---

// What decides which kinds of message the worker takes next.
enum class WorkerWaitsFor {
  kWelcome,      // its first message: a Welcome
  kInstruction,  // between steps: an EpochDeal, an EvalRequest or Shutdown
  kParams,       // a step's parameters; or a new EpochDeal (a worker was lost and the rest of
                 // the epoch is re-dealt from this step), or Shutdown (the run ends early)
};

// What the worker holds the coordinator's messages to, from its Welcome (empty before it).
struct WorkerWireLimits {
  std::string run_id;
  size_t num_params = 0;    // floats in the parameters of the Welcome's model
  int max_local_batch = 0;  // the largest share this worker is dealt (or evaluates)
};

// A message from the coordinator: of a kind the worker takes while it `waits` for it; of
// this run; a Welcome naming a known model and augmentation with positive sizes; an
// EpochDeal starting at `step` (the next global step the worker expects) whose shares fit
// max_local_batch and their global batch; an EvalRequest of a known split and positive
// batch; Params of `step` holding exactly num_params finite floats; a Shutdown of this run.
// The Welcome's own parameters are checked by check_welcome_params, once the worker has
// opened its data. The sentences are the worker's exit messages.
std::string check_coordinator_message(const threadsplit::CoordinatorMessage& m,
                                      const WorkerWireLimits& limits, WorkerWaitsFor waits,
                                      int64_t step);

// The Welcome's starting parameters: exactly num_params finite floats.
std::string check_welcome_params(const threadsplit::Welcome& w, size_t num_params);

}  // namespace ts
