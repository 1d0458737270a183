// The shared-memory data plane (--data-plane shm, the default for spawned workers): the
// gradients and parameters of workers on the coordinator's host travel through one shared
// segment instead of gRPC, which keeps the control plane (every message, in the same order,
// only without the floats) and the path across hosts.
//
// docs/exchange-bench-2core.md measured the gRPC path at ~1.2 ms of coordinator CPU per MB
// per worker (socket read, protobuf parse, serialize per link, socket write): at 16 workers of
// a 7 MB model, more than the step's compute. Through the segment the coordinator reads each
// worker's slot once (the sum, with the finiteness check) and writes the parameters once.
//
// Layout (a memfd, inherited by the spawned workers; its fd number in THREADSPLIT_SHM_FD):
//   [0, 4096)       header: magic, num_params, slots
//   params          num_params floats (the coordinator writes, every worker reads)
//   slot r          num_params floats (worker r writes its gradient, the coordinator reads)
// each region page-aligned. Who may touch what when is the protocol's order, not a lock:
//   worker r writes slot r for step s, then sends its StepResult; the coordinator reads the
//   slots once every result of step s is in, then writes the parameters, then sends Params;
//   worker r reads them before it computes step s + 1, so before it writes slot r again, and
//   the coordinator writes them again only after every result of step s + 1 is in.
// A message crossing the socket orders the memory around it (a release fence before the
// send, an acquire fence after the receive, for the letter of the C++ model).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ts {

class SharedPlane {
 public:
  // A new anonymous segment for `slots` gradients of num_params floats. Throws
  // std::runtime_error naming the call that failed.
  static SharedPlane create(size_t num_params, int slots);
  // The segment behind an inherited fd, checked against what this worker expects (the magic,
  // num_params, and that `slot` exists). Throws std::runtime_error saying what did not match.
  static SharedPlane open(int fd, size_t num_params, int slot);

  SharedPlane() = default;
  SharedPlane(SharedPlane&& o) noexcept { *this = std::move(o); }
  SharedPlane& operator=(SharedPlane&& o) noexcept;
  SharedPlane(const SharedPlane&) = delete;
  SharedPlane& operator=(const SharedPlane&) = delete;
  ~SharedPlane();

  bool valid() const { return base_ != nullptr; }
  int fd() const { return fd_; }
  size_t num_params() const { return num_params_; }
  int slots() const { return slots_; }
  size_t bytes() const { return bytes_; }
  float* params() const;
  float* slot(int r) const;

  // The segment's size for these figures.
  static size_t size_for(size_t num_params, int slots);

 private:
  int fd_ = -1;
  void* base_ = nullptr;
  size_t bytes_ = 0, num_params_ = 0, region_ = 0;
  int slots_ = 0;
};

// Before sending the message that hands a region over / after receiving it.
void release_to_peer();
void acquire_from_peer();

}  // namespace ts
