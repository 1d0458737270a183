// Facts about this process and this machine, for run reports: read from /proc and
// getrusage, never fatal (an unreadable fact comes back empty or -1).
#pragma once
#include <cstdint>
#include <string>

namespace ts {

// The value after "key:" on the first line of `path` (a /proc file such as
// /proc/self/status) that starts with `key`, trimmed; empty when the file or the line is missing.
std::string proc_field(const std::string& path, const std::string& key);

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
