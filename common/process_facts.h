// Facts about this process and this machine, for run reports: read from /proc and
// getrusage, never fatal (an unreadable fact comes back empty or -1).
#pragma once
#include <cstdint>
#include <string>

namespace ts {

// Threads in this process right now (/proc/self/status Threads:), gRPC's and OpenMP's included.
int process_thread_count();

struct ResourceUse {
  int64_t max_rss_kb = -1;
  double user_s = 0, system_s = 0;
};
ResourceUse resource_use();

struct MachineFacts {
  std::string hostname;
  std::string cpu_model;   // /proc/cpuinfo "model name"
  int online_cores = 0;    // sysconf(_SC_NPROCESSORS_ONLN)
  int64_t memory_bytes = 0;  // /proc/meminfo MemTotal
};
MachineFacts machine_facts();

std::string host_name();


}  // namespace ts
