#include "checkpoint_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

namespace ts {

namespace {

constexpr const char* kPrefix = "step-";
constexpr const char* kSuffix = ".ckpt";

// The step of a file named like ours, or -1.
int64_t step_of(const std::string& name) {
  const size_t p = std::strlen(kPrefix), s = std::strlen(kSuffix);
  if (name.size() != p + 12 + s || name.compare(0, p, kPrefix) != 0 ||
      name.compare(name.size() - s, s, kSuffix) != 0)
    return -1;
  int64_t step = 0;
  for (size_t i = p; i < p + 12; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

}  // namespace

std::string describe_lineage(const std::string& lineage) {
  if (lineage.empty()) return "no lineage (written before lineages existed)";
  // A file's lineage is its writer's word: bounded before it reaches a message.
  return "lineage " + (lineage.size() > 40 ? lineage.substr(0, 40) + "..." : lineage);
}

CheckpointStore::CheckpointStore(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {
  if (mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST)
    throw CheckpointError("--checkpoint-dir " + dir_ + ": cannot create it (" + std::strerror(errno) + ")");
  struct stat st {};
  if (stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw CheckpointError("--checkpoint-dir " + dir_ + " is not a directory");
}

std::string CheckpointStore::path_for(int64_t step) const {
  char name[64];
  std::snprintf(name, sizeof name, "%s%012" PRId64 "%s", kPrefix, step, kSuffix);
  return dir_ + "/" + name;
}

std::vector<std::string> CheckpointStore::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    const int64_t step = step_of(name);
    if (step >= 0) found.emplace_back(step, e.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> paths;
  for (auto& f : found) paths.push_back(std::move(f.second));
  return paths;
}

std::vector<CheckpointStore::Entry> CheckpointStore::survey() const {
  std::vector<Entry> out;
  for (const std::string& path : list()) {
    Entry e;
    e.path = path;
    e.step = step_of(std::filesystem::path(path).filename().string());
    try {
      e.lineage = read_checkpoint_label(path).lineage;
    } catch (const CheckpointError& err) {
      e.problem = err.what();
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string CheckpointStore::save(const NetworkSpec& net, const TrainingState& state,
                                  const Optimizer* optimizer) {
  const std::string path = path_for(state.step);
  TrainingState mine = state;
  mine.lineage = lineage_;
  save_checkpoint(path, net, mine, optimizer);
  // Rotation: this lineage's files only, the one just written always kept, then the
  // highest steps. A file of another run, or one whose lineage cannot be read, stays.
  int kept = 1;
  for (const Entry& e : survey()) {
    if (e.path == path || !e.lineage || *e.lineage != lineage_) continue;
    if (kept < keep_) {
      ++kept;
      continue;
    }
    std::remove(e.path.c_str());
  }
  if (replace_others_) {
    replace_others_ = false;
    for (auto& r : remove_other_lineages()) removed_.push_back(std::move(r));
  }
  return path;
}

std::vector<std::string> CheckpointStore::remove_other_lineages() {
  std::vector<std::string> removed;
  for (const Entry& e : survey()) {
    if (e.lineage && *e.lineage == lineage_) continue;
    if (std::remove(e.path.c_str()) == 0) removed.push_back(e.path);
  }
  return removed;
}

std::optional<CheckpointStore::Loaded> CheckpointStore::load_newest(
    const NetworkSpec& net, std::vector<std::string>* skipped) const {
  std::optional<Loaded> newest;
  // Newest step per lineage among the files that load: more than one lineage is refused.
  std::map<std::string, std::pair<int64_t, int>> lineages;
  for (const std::string& path : list()) {
    try {
      if (!newest) {
        newest = Loaded{path, load_checkpoint(path, net)};
        lineages[newest->state.lineage] = {newest->state.step, 1};
        continue;
      }
      const CheckpointLabel label = read_checkpoint_label(path);
      auto& l = lineages.try_emplace(label.lineage, label.step, 0).first->second;
      ++l.second;
    } catch (const CheckpointError& e) {
      if (!newest && skipped) skipped->push_back(e.what());
    }
  }
  if (lineages.size() > 1) {
    std::string which;
    for (const auto& [lineage, at] : lineages)
      which += std::string(which.empty() ? "" : "; ") + describe_lineage(lineage) + ": " +
               std::to_string(at.second) + " file(s), newest step " + std::to_string(at.first);
    throw CheckpointError("--checkpoint-dir " + dir_ + " holds the checkpoints of " +
                          std::to_string(lineages.size()) + " different runs (" + which +
                          "): move the other run's files to another directory, then --resume");
  }
  return newest;
}

}  // namespace ts
