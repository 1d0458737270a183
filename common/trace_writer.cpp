#include "trace_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "atomic_file.h"
#include "json_io.h"

namespace ts {

namespace {

// Span arguments are counts (step, samples) passed as doubles: integral ones are written as
// integers, as the writer before nlohmann printed them, others as numbers.
nlohmann::ordered_json arg_value(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9007199254740992.0)  // 2^53
    return int64_t(v);
  return v;
}

}  // namespace

void TraceWriter::name_process(int pid, const std::string& name) { process_names_[pid] = name; }

void TraceWriter::name_thread(int pid, int tid, const std::string& name) {
  thread_names_[{pid, tid}] = name;
}

void TraceWriter::span(int pid, int tid, const std::string& name, const std::string& category,
                       double start_us, double dur_us,
                       const std::vector<std::pair<std::string, double>>& args) {
  spans_.push_back(Span{pid, tid, name, category, start_us, std::max(0.0, dur_us), args});
}

std::string TraceWriter::json(const std::map<std::string, std::string>& other_data) const {
  using nlohmann::ordered_json;
  ordered_json events = ordered_json::array();
  auto metadata = [&](const char* name, int pid, int tid, const char* arg, const ordered_json& v) {
    ordered_json e;
    e["name"] = name;
    e["ph"] = "M";
    e["pid"] = pid;
    e["tid"] = tid;
    e["args"][arg] = v;
    events.push_back(std::move(e));
  };
  // Metadata first: viewers name the tracks from these ("ph":"M").
  for (const auto& [pid, name] : process_names_) {
    metadata("process_name", pid, 0, "name", name);
    metadata("process_sort_index", pid, 0, "sort_index", pid);
  }
  for (const auto& [key, name] : thread_names_) metadata("thread_name", key.first, key.second, "name", name);
  for (const Span& s : spans_) {
    ordered_json e;
    e["name"] = s.name;
    e["cat"] = s.category;
    e["ph"] = "X";
    e["pid"] = s.pid;
    e["tid"] = s.tid;
    e["ts"] = s.start_us;
    e["dur"] = s.dur_us;
    if (!s.args.empty()) {
      ordered_json& args = e["args"];
      for (const auto& [k, v] : s.args) args[k] = arg_value(v);
    }
    events.push_back(std::move(e));
  }
  ordered_json doc;
  doc["traceEvents"] = std::move(events);
  doc["displayTimeUnit"] = "ms";
  ordered_json& other = doc["otherData"] = ordered_json::object();
  for (const auto& [k, v] : other_data) other[k] = v;
  return json_text(doc);
}

void TraceWriter::write(const std::string& path,
                        const std::map<std::string, std::string>& other_data) const {
  try {
    write_file_atomically(path, json(other_data) + "\n");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot write the trace " + path + ": " + e.what());
  }
}

}  // namespace ts
