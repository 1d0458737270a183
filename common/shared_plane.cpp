#include "shared_plane.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ts {

namespace {

constexpr size_t kPage = 4096;
constexpr char kMagic[8] = {'T', 'S', 'P', 'L', 'A', 'N', 'E', '1'};

struct Header {
  char magic[8];
  uint64_t num_params;
  uint64_t slots;
};

size_t region_bytes(size_t num_params) { return (num_params * sizeof(float) + kPage - 1) / kPage * kPage; }

std::string os_error(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

size_t SharedPlane::size_for(size_t num_params, int slots) {
  return kPage + region_bytes(num_params) * (size_t(slots) + 1);
}

SharedPlane SharedPlane::create(size_t num_params, int slots) {
  if (num_params == 0 || slots < 1) throw std::invalid_argument("a shared plane needs parameters and slots");
  SharedPlane p;
  // Not close-on-exec: the spawned workers inherit it (the launcher closes nothing).
  p.fd_ = memfd_create("threadsplit-plane", 0);
  if (p.fd_ < 0) throw std::runtime_error(os_error("memfd_create for the shared-memory data plane"));
  p.bytes_ = size_for(num_params, slots);
  if (ftruncate(p.fd_, off_t(p.bytes_)) != 0)
    throw std::runtime_error(os_error(("ftruncate of the shared-memory data plane to " +
                                       std::to_string(p.bytes_) + " bytes").c_str()));
  p.base_ = mmap(nullptr, p.bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, p.fd_, 0);
  if (p.base_ == MAP_FAILED) {
    p.base_ = nullptr;
    throw std::runtime_error(os_error("mmap of the shared-memory data plane"));
  }
  p.num_params_ = num_params;
  p.slots_ = slots;
  p.region_ = region_bytes(num_params);
  Header h;
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.num_params = num_params;
  h.slots = uint64_t(slots);
  std::memcpy(p.base_, &h, sizeof h);
  return p;
}

SharedPlane SharedPlane::open(int fd, size_t num_params, int slot) {
  SharedPlane p;
  const off_t end = lseek(fd, 0, SEEK_END);
  if (end < off_t(kPage))
    throw std::runtime_error("THREADSPLIT_SHM_FD=" + std::to_string(fd) +
                             " is not the coordinator's data plane (" +
                             (end < 0 ? os_error("lseek") : std::to_string(end) + " bytes") + ")");
  p.bytes_ = size_t(end);
  p.base_ = mmap(nullptr, p.bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p.base_ == MAP_FAILED) {
    p.base_ = nullptr;
    throw std::runtime_error(os_error("mmap of the coordinator's data plane (THREADSPLIT_SHM_FD)"));
  }
  p.fd_ = fd;
  Header h;
  std::memcpy(&h, p.base_, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    throw std::runtime_error("THREADSPLIT_SHM_FD=" + std::to_string(fd) + " is not a threadsplit data plane");
  if (h.num_params != num_params || h.slots < 1 || slot < 0 || uint64_t(slot) >= h.slots ||
      p.bytes_ < size_for(num_params, int(h.slots)))
    throw std::runtime_error("the coordinator's data plane holds " + std::to_string(h.slots) + " slots of " +
                             std::to_string(h.num_params) + " floats; this worker (rank " + std::to_string(slot) +
                             ") needs " + std::to_string(num_params));
  p.num_params_ = num_params;
  p.slots_ = int(h.slots);
  p.region_ = region_bytes(num_params);
  return p;
}

SharedPlane& SharedPlane::operator=(SharedPlane&& o) noexcept {
  if (this != &o) {
    this->~SharedPlane();
    fd_ = o.fd_;
    base_ = o.base_;
    bytes_ = o.bytes_;
    num_params_ = o.num_params_;
    region_ = o.region_;
    slots_ = o.slots_;
    o.fd_ = -1;
    o.base_ = nullptr;
  }
  return *this;
}

SharedPlane::~SharedPlane() {
  if (base_) munmap(base_, bytes_);
  if (fd_ >= 0) close(fd_);
  base_ = nullptr;
  fd_ = -1;
}

float* SharedPlane::params() const { return reinterpret_cast<float*>(static_cast<char*>(base_) + kPage); }

float* SharedPlane::slot(int r) const {
  return reinterpret_cast<float*>(static_cast<char*>(base_) + kPage + region_ * (size_t(r) + 1));
}

void release_to_peer() { std::atomic_thread_fence(std::memory_order_release); }
void acquire_from_peer() { std::atomic_thread_fence(std::memory_order_acquire); }

}  // namespace ts
