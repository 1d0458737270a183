// Chrome trace-event JSON (chrome://tracing, ui.perfetto.dev): complete events ("ph":"X") on
// named tracks. A track is a (pid, tid) pair; the viewers draw one row per thread, grouped by
// process, so each worker gets its own pid and the coordinator pid 0.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ts {

class TraceWriter {
 public:
  void name_process(int pid, const std::string& name);
  void name_thread(int pid, int tid, const std::string& name);
  // A span of `dur_us` microseconds starting at `start_us` (microseconds since the trace's
  // zero). Negative durations are written as 0; the viewers reject them. `args` are shown with
  // the span; integral ones are written as integers (they are counts: step, samples).
  void span(int pid, int tid, const std::string& name, const std::string& category,
            double start_us, double dur_us,
            const std::vector<std::pair<std::string, double>>& args = {});
  size_t spans() const { return spans_.size(); }

  // The whole document: {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}.
  std::string json(const std::map<std::string, std::string>& other_data = {}) const;
  // Writes json() to `path` through a temporary file. Throws std::runtime_error naming it.
  void write(const std::string& path, const std::map<std::string, std::string>& other_data = {}) const;

 private:
  struct Span {
    int pid, tid;
    std::string name, category;
    double start_us, dur_us;
    std::vector<std::pair<std::string, double>> args;
  };
  std::map<int, std::string> process_names_;
  std::map<std::pair<int, int>, std::string> thread_names_;
  std::vector<Span> spans_;
};

}  // namespace ts
