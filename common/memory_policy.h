// Where a worker's memory goes on a machine with several NUMA nodes: the placement's choice
// (common/placement.h) applied with set_mempolicy(2) before the worker allocates, and the
// policy in effect read back for the report (get_mempolicy(2)). No libnuma: two system calls.
#pragma once
#include <string>

namespace ts {

// THREADSPLIT_MEMBIND, set by the coordinator's launcher: "bind:N[,M...]" (as numactl -m) or
// "interleave:N,M...". Unset or empty: nothing is changed (the kernel's first touch).
// Throws std::invalid_argument naming the value when it is malformed; returns a warning
// (empty when none) when the kernel refused it, so the worker runs on and the report shows
// the policy it really has.
std::string apply_memory_policy_from_environment();

// The calling thread's policy: "first touch" (the default), "local", "bind:0",
// "interleave:0,1", "preferred:1", or "unknown (why)".
std::string current_memory_policy();

}  // namespace ts
