// libFuzzer: the CIFAR-10 reader (common/cifar10.h). A valid synthetic set is written once;
// each input then damages one of its six files -- a new length near the real one (truncated,
// extended, or kept) and a few bytes overwritten, labels included -- opens the directory and
// restores the file. Cifar10::open must throw DataError or return a set whose every label is
// 0..9, never crash or hang.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cifar10.h"
#include "synthetic_cifar10.h"

namespace {

const std::string& dir() {
  static const std::string d = [] {
    const std::string p = "/tmp/threadsplit-fuzz-cifar10";
    ts::ensure_synthetic_cifar10(p, 1);
    return p;
  }();
  return d;
}

// The six files as written, to restore what an input cut off.
const std::vector<std::string>& pristine() {
  static const std::vector<std::string> files = [] {
    std::vector<std::string> f;
    for (int i = 0; i < ts::kCifarFiles; ++i) {
      const std::string path = dir() + "/" + ts::cifar10_file_name(i);
      std::string bytes(std::filesystem::file_size(path), '\0');
      const int fd = ::open(path.c_str(), O_RDONLY);
      if (fd < 0 || ::pread(fd, &bytes[0], bytes.size(), 0) != ssize_t(bytes.size())) std::abort();
      ::close(fd);
      f.push_back(std::move(bytes));
    }
    return f;
  }();
  return files;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const int which = data[0] % ts::kCifarFiles;
  const std::string& original = pristine()[size_t(which)];
  const std::string file = dir() + "/" + ts::cifar10_file_name(which);
  const off_t full = off_t(ts::kCifarRecordsPerFile) * ts::kCifarRecordBytes;
  // Length: kept (most inputs), or moved by up to +-32767 bytes, or cut to a few bytes.
  int16_t delta;
  std::memcpy(&delta, data + 1, sizeof delta);
  off_t length = full;
  if (data[3] % 4 == 1) length = full + delta;
  if (data[3] % 4 == 2) length = (uint16_t(delta) % 4096);
  const int fd = ::open(file.c_str(), O_RDWR);
  if (fd < 0) std::abort();
  // Patches: (4-byte offset, 1 byte) pairs, offsets taken modulo the length.
  struct Patch {
    off_t at;
    uint8_t old_byte;
  };
  std::vector<Patch> patches;
  for (size_t i = 4; i + 5 <= size && patches.size() < 64; i += 5) {
    uint32_t at;
    std::memcpy(&at, data + i, sizeof at);
    // Labels sit at multiples of 3073: aim half the patches at them.
    off_t off = (at & 1) ? off_t(at % ts::kCifarRecordsPerFile) * ts::kCifarRecordBytes : off_t(at % full);
    uint8_t old = 0;
    if (::pread(fd, &old, 1, off) != 1) continue;
    if (::pwrite(fd, data + i + 4, 1, off) != 1) std::abort();
    patches.push_back({off, old});
  }
  if (length != full && ::ftruncate(fd, length) != 0) std::abort();
  try {
    ts::Cifar10 set = ts::Cifar10::open(dir());
    for (int i = 0; i < set.size(ts::Set::kTrain); i += 997)
      if (set.label(ts::Set::kTrain, i) < 0 || set.label(ts::Set::kTrain, i) > 9) std::abort();
  } catch (const ts::DataError&) {
  }
  // Restore: the patched bytes, then the length, then whatever a cut removed.
  for (auto it = patches.rbegin(); it != patches.rend(); ++it)
    if (::pwrite(fd, &it->old_byte, 1, it->at) != 1) std::abort();
  if (length != full && ::ftruncate(fd, full) != 0) std::abort();
  if (length < full &&
      ::pwrite(fd, original.data() + length, size_t(full - length), length) != ssize_t(full - length))
    std::abort();
  ::close(fd);
  return 0;
}
