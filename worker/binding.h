// What this worker really runs on, read back after its OpenMP runtime started: the affinity
// mask, the size of the team a parallel region gets, and the OpenMP environment it was given.
#pragma once
#include "trainer.pb.h"

namespace ts {

threadsplit::Binding read_binding();

// This build's libraries: oneDNN (dnnl_version()), gRPC, protobuf, compiler.
threadsplit::Versions library_versions();

}  // namespace ts
