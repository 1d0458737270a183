#include "checkpoint_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>

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

std::string CheckpointStore::save(const NetworkSpec& net, const TrainingState& state,
                                  const Optimizer* optimizer) {
  const std::string path = path_for(state.step);
  save_checkpoint(path, net, state, optimizer);
  const std::vector<std::string> all = list();
  for (size_t i = size_t(keep_); i < all.size(); ++i) std::remove(all[i].c_str());
  return path;
}

std::optional<CheckpointStore::Loaded> CheckpointStore::load_newest(
    const NetworkSpec& net, std::vector<std::string>* skipped) const {
  for (const std::string& path : list()) {
    try {
      return Loaded{path, load_checkpoint(path, net)};
    } catch (const CheckpointError& e) {
      if (skipped) skipped->push_back(e.what());
    }
  }
  return std::nullopt;
}

}  // namespace ts
