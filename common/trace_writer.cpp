#include "trace_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "atomic_file.h"
#include "json_writer.h"

namespace ts {

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
  JsonWriter j;
  j.begin_object();
  j.key("traceEvents").begin_array();
  // Metadata first: viewers name the tracks from these ("ph":"M").
  for (const auto& [pid, name] : process_names_) {
    j.begin_object().field("name", "process_name").field("ph", "M").field("pid", pid).field("tid", 0);
    j.key("args").begin_object().field("name", name).end_object();
    j.end_object();
    j.begin_object().field("name", "process_sort_index").field("ph", "M").field("pid", pid).field("tid", 0);
    j.key("args").begin_object().field("sort_index", pid).end_object();
    j.end_object();
  }
  for (const auto& [key, name] : thread_names_) {
    j.begin_object().field("name", "thread_name").field("ph", "M").field("pid", key.first)
        .field("tid", key.second);
    j.key("args").begin_object().field("name", name).end_object();
    j.end_object();
  }
  for (const Span& s : spans_) {
    j.begin_object()
        .field("name", s.name)
        .field("cat", s.category)
        .field("ph", "X")
        .field("pid", s.pid)
        .field("tid", s.tid)
        .field("ts", s.start_us)
        .field("dur", s.dur_us);
    if (!s.args.empty()) {
      j.key("args").begin_object();
      for (const auto& [k, v] : s.args) j.field(k, v);
      j.end_object();
    }
    j.end_object();
  }
  j.end_array();
  j.field("displayTimeUnit", "ms");
  j.key("otherData").begin_object();
  for (const auto& [k, v] : other_data) j.field(k, v);
  j.end_object();
  j.end_object();
  return j.str();
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
