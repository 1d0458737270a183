#include "coordinator_priority.h"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ts {

CoordinatorPriority apply_coordinator_priority(const std::string& mode) {
  CoordinatorPriority p;
  if (mode == "normal") {
    p.describe = "normal (--coordinator-priority normal)";
    return p;
  }
  sched_param sp{};
  sp.sched_priority = 1;
  if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0) {
    p.realtime = true;
    p.describe = "training thread SCHED_FIFO 1 (gRPC's threads and the workers: normal)";
    return p;
  }
  const int err = errno;
  const std::string why = std::string("SCHED_FIFO refused: ") + std::strerror(err) +
                          "; needs root, CAP_SYS_NICE or an rtprio limit (ulimit -r) of at least 1";
  if (mode == "realtime") throw std::runtime_error("--coordinator-priority realtime: " + why);
  p.describe = "normal (" + why + ")";
  return p;
}

}  // namespace ts
