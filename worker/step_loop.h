// The worker's side of a run: join the coordinator (Hello -> Welcome), then serve its stream
// until Shutdown: for each EpochDeal queue the epoch's batches on the loader and run its
// steps (next_batch, train_step, send_gradient, await_params, then install the parameters
// that came back, or start over on the new deal that came instead); for each EvalRequest
// evaluate the records named; at the end say Goodbye. The stream itself is
// worker/coordinator_link.h; the checks on every message that arrives, common/wire_checks.h.
#pragma once
#include <string>

#include "channel_security.h"

namespace ts {

struct WorkerConfig {
  std::string coordinator;        // HOST:PORT
  std::string token;              // THREADSPLIT_TOKEN
  std::string run_id;             // THREADSPLIT_RUN_ID, or empty
  int rank = -1;                  // -1: the coordinator picks
  std::string data_dir;           // empty: the directory the coordinator names
  double connect_timeout_s = 60;  // to reach the coordinator and be welcomed
  int inter_op = 1;               // teams running ops at once (worker/inter_op_teams.h)
  int shm_fd = -1;                // THREADSPLIT_SHM_FD: the coordinator's data plane, inherited
  ChannelSecurity tls;            // THREADSPLIT_TLS_*: empty for plain gRPC
};

// Exit codes: 0 done; 1 the run failed (here or at the coordinator); 2 bad local setup
// (data); 3 the coordinator vanished or went silent; 4 the coordinator refused us.
int run_worker(const WorkerConfig& config);

}  // namespace ts
