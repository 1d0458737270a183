#include "process_facts.h"

#include <sys/resource.h>
#include <unistd.h>

#include <climits>
#include <fstream>

namespace ts {

std::string proc_field(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    size_t colon = line.find(':', key.size());
    if (colon == std::string::npos) continue;
    size_t b = line.find_first_not_of(" \t", colon + 1);
    if (b == std::string::npos) return "";
    size_t e = line.find_last_not_of(" \t\r");
    return line.substr(b, e - b + 1);
  }
  return "";
}

int process_thread_count() {
  const std::string v = proc_field("/proc/self/status", "Threads");
  return v.empty() ? -1 : std::stoi(v);
}

ResourceUse resource_use() {
  ResourceUse r;
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) == 0) {
    r.max_rss_kb = u.ru_maxrss;
    r.user_s = double(u.ru_utime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec);
    r.system_s = double(u.ru_stime.tv_sec) + 1e-6 * double(u.ru_stime.tv_usec);
  }
  return r;
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

MachineFacts machine_facts() {
  MachineFacts m;
  m.hostname = host_name();
  m.cpu_model = proc_field("/proc/cpuinfo", "model name");
  m.online_cores = int(sysconf(_SC_NPROCESSORS_ONLN));
  const std::string mem = proc_field("/proc/meminfo", "MemTotal");  // "16318480 kB"
  if (!mem.empty()) m.memory_bytes = std::stoll(mem) * 1024;
  return m;
}


}  // namespace ts
