#include "core_set.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "process_facts.h"

namespace ts {

namespace {

// A core number: decimal digits only, below a sanity bound far above any real machine.
int parse_core_number(const std::string& piece, const std::string& whole) {
  constexpr int kMaxCore = 1 << 16;
  if (piece.empty() || piece.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("core list '" + whole + "': '" + piece +
                                "' is not a core number (expected e.g. 0-3,8,10-11)");
  if (piece.size() > 6 || std::stoi(piece) >= kMaxCore)
    throw std::invalid_argument("core list '" + whole + "': core " + piece + " is out of range");
  return std::stoi(piece);
}

}  // namespace

CoreSet CoreSet::parse(const std::string& text) {
  if (text.empty()) throw std::invalid_argument("core list is empty (expected e.g. 0-3,8,10-11)");
  std::vector<int> cores;
  std::set<int> seen;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(begin, end - begin);
    if (item.empty())
      throw std::invalid_argument("core list '" + text + "' has an empty item (stray comma?)");
    const size_t dash = item.find('-');
    int first, last;
    if (dash == std::string::npos) {
      first = last = parse_core_number(item, text);
    } else {
      first = parse_core_number(item.substr(0, dash), text);
      last = parse_core_number(item.substr(dash + 1), text);
      if (last < first)
        throw std::invalid_argument("core list '" + text + "': range '" + item +
                                    "' runs backwards");
    }
    for (int c = first; c <= last; ++c) {
      if (!seen.insert(c).second)
        throw std::invalid_argument("core list '" + text + "' names core " + std::to_string(c) +
                                    " twice");
      cores.push_back(c);
    }
    begin = end + 1;
  }
  return CoreSet(std::move(cores));
}

CoreSet CoreSet::of_this_process() {
  // CPU_ALLOC sizes: start at 1024 CPUs and grow while the kernel says the mask is too small.
  for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(size_t(ncpus));
    const size_t bytes = CPU_ALLOC_SIZE(size_t(ncpus));
    CPU_ZERO_S(bytes, set);
    if (sched_getaffinity(0, bytes, set) == 0) {
      std::vector<int> cores;
      for (int c = 0; c < ncpus; ++c)
        if (CPU_ISSET_S(size_t(c), bytes, set)) cores.push_back(c);
      CPU_FREE(set);
      return CoreSet(std::move(cores));
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) throw std::runtime_error(std::string("sched_getaffinity: ") + strerror(err));
  }
  throw std::runtime_error("sched_getaffinity: the affinity mask is larger than 2^20 CPUs");
}

CoreSet CoreSet::of_process(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  const std::string list = proc_field(path, "Cpus_allowed_list");
  if (list.empty())
    throw std::runtime_error("cannot read Cpus_allowed_list from " + path + " (is process " +
                             std::to_string(pid) + " alive?)");
  return parse(list);
}

CoreSet CoreSet::of_process_threads(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  CoreSet all;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    // A thread that ended since the listing has no status left: skip it.
    const std::string list = proc_field(entry.path().string() + "/status", "Cpus_allowed_list");
    if (!list.empty()) all = united(all, parse(list));
  }
  if (ec) throw std::runtime_error("cannot read " + dir + " (is process " + std::to_string(pid) +
                                   " alive?)");
  return all.sorted();
}

CoreSet CoreSet::united(const CoreSet& a, const CoreSet& b) {
  std::vector<int> out = a.cores_;
  for (int c : b.cores_)
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return CoreSet(std::move(out));
}

CoreSet CoreSet::slice(int rank, int threads) const {
  if (cores_.empty()) throw std::invalid_argument("cannot slice an empty core list");
  if (rank < 0 || threads <= 0) throw std::invalid_argument("slice needs rank >= 0, threads > 0");
  std::vector<int> out;
  const size_t n = cores_.size();
  for (int i = 0; i < threads; ++i) {
    const int c = cores_[(size_t(rank) * size_t(threads) + size_t(i)) % n];
    // With fewer cores than threads one core can come round twice: list it once.
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return CoreSet(std::move(out));
}

CoreSet CoreSet::from_omp_places(const std::string& places) {
  std::string list;
  size_t i = 0;
  while (i < places.size()) {
    const size_t close = places.find('}', i);
    if (places[i] != '{' || close == std::string::npos || close == i + 1) return {};
    const std::string core = places.substr(i + 1, close - i - 1);
    if (core.find_first_not_of("0123456789") != std::string::npos) return {};
    list += (list.empty() ? "" : ",") + core;
    i = close + 1;
    if (i < places.size() && (places[i++] != ',' || i == places.size())) return {};
  }
  try {
    return list.empty() ? CoreSet() : parse(list);
  } catch (const std::invalid_argument&) {
    return {};
  }
}

std::string CoreSet::to_string() const {
  std::string s;
  size_t i = 0;
  while (i < cores_.size()) {
    size_t j = i;
    while (j + 1 < cores_.size() && cores_[j + 1] == cores_[j] + 1) ++j;
    if (!s.empty()) s += ',';
    s += std::to_string(cores_[i]);
    if (j > i) s += "-" + std::to_string(cores_[j]);
    i = j + 1;
  }
  return s;
}

std::string CoreSet::omp_places() const {
  std::string s;
  for (int c : cores_) {
    if (!s.empty()) s += ',';
    s += "{" + std::to_string(c) + "}";
  }
  return s;
}

CoreSet CoreSet::sorted() const {
  std::vector<int> c = cores_;
  std::sort(c.begin(), c.end());
  return CoreSet(std::move(c));
}

}  // namespace ts
