// What this worker really runs on, read back after its OpenMP runtime started: the affinity
// masks of its OpenMP threads, the size of the team a parallel region gets, and the OpenMP
// environment it was given.
//
// libgomp pins the initial thread to the first OpenMP place as soon as it starts, and threads
// inherit their creator's mask, so the loader and gRPC threads would all share core 0 of the
// worker. HelperThreadCores widens the initial thread to all of the worker's cores while
// helper threads are created, then pins it back.
#pragma once
#include <vector>

#include "core_set.h"
#include "trainer.pb.h"

namespace ts {

// Each OpenMP thread's affinity mask, thread 0 first (starts the runtime if needed).
std::vector<CoreSet> omp_thread_cores();

class InterOpTeams;

// `teams`: the worker's inter-op lanes (null or one lane: the OpenMP team of this thread).
threadsplit::Binding read_binding(InterOpTeams* teams = nullptr);

// This build's libraries: oneDNN (dnnl_version()), gRPC, protobuf, compiler.
threadsplit::Versions library_versions();

// While alive, the calling thread may run on every core of the OpenMP team, so threads it
// creates inherit the whole set (`all`, else the cores of this thread's OpenMP team); the
// destructor restores the caller's own mask.
class HelperThreadCores {
 public:
  explicit HelperThreadCores(const CoreSet& all = {});
  ~HelperThreadCores();
  HelperThreadCores(const HelperThreadCores&) = delete;
  HelperThreadCores& operator=(const HelperThreadCores&) = delete;

 private:
  CoreSet own_;
};

}  // namespace ts
