#include "memory_policy.h"

#include <linux/mempolicy.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace ts {

namespace {

constexpr int kMaxNodes = 1024;
constexpr size_t kBitsPerWord = 8 * sizeof(unsigned long);
using NodeMask = std::vector<unsigned long>;

NodeMask empty_mask() { return NodeMask(kMaxNodes / kBitsPerWord, 0); }

std::string nodes_of(const NodeMask& m) {
  std::string s;
  for (int n = 0; n < kMaxNodes; ++n)
    if (m[size_t(n) / kBitsPerWord] >> (size_t(n) % kBitsPerWord) & 1UL) s += (s.empty() ? "" : ",") + std::to_string(n);
  return s;
}

}  // namespace

std::string apply_memory_policy_from_environment() {
  const char* env = std::getenv("THREADSPLIT_MEMBIND");
  if (!env || !*env) return "";
  const std::string v = env;
  auto bad = [&v]() {
    return std::invalid_argument("THREADSPLIT_MEMBIND must be bind:N[,M...] or interleave:N,M... with "
                                 "NUMA node numbers below " + std::to_string(kMaxNodes) + ", got '" +
                                 v.substr(0, 64) + "': unset it (the coordinator sets it for the workers "
                                 "it spawns)");
  };
  const size_t colon = v.find(':');
  if (colon == std::string::npos) throw bad();
  const std::string how = v.substr(0, colon);
  int mode = 0;
  if (how == "bind") mode = MPOL_BIND;
  else if (how == "interleave") mode = MPOL_INTERLEAVE;
  else throw bad();
  NodeMask mask = empty_mask();
  size_t i = colon + 1;
  bool any = false;
  while (i <= v.size()) {
    size_t j = v.find(',', i);
    if (j == std::string::npos) j = v.size();
    const std::string item = v.substr(i, j - i);
    if (item.empty() || item.size() > 4 || item.find_first_not_of("0123456789") != std::string::npos) throw bad();
    const int n = std::atoi(item.c_str());
    if (n >= kMaxNodes) throw bad();
    mask[size_t(n) / kBitsPerWord] |= 1UL << (size_t(n) % kBitsPerWord);
    any = true;
    i = j + 1;
  }
  if (!any) throw bad();
  if (syscall(SYS_set_mempolicy, mode, mask.data(), (unsigned long)kMaxNodes + 1) != 0)
    return "the kernel refused memory policy " + v + " (" + std::strerror(errno) +
           "): this worker's memory goes where it is first touched";
  return "";
}

std::string current_memory_policy() {
  int mode = 0;
  NodeMask mask = empty_mask();
  if (syscall(SYS_get_mempolicy, &mode, mask.data(), (unsigned long)kMaxNodes + 1, nullptr, 0UL) != 0)
    return std::string("unknown (") + std::strerror(errno) + ")";
  switch (mode & ~(MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)) {
    case MPOL_DEFAULT: return "first touch";
    case MPOL_LOCAL: return "local";
    case MPOL_BIND: return "bind:" + nodes_of(mask);
    case MPOL_INTERLEAVE: return "interleave:" + nodes_of(mask);
    case MPOL_PREFERRED: return "preferred:" + nodes_of(mask);
    default: return "mode " + std::to_string(mode) + ":" + nodes_of(mask);
  }
}

}  // namespace ts
