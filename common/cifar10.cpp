#include "cifar10.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace ts {

namespace {

constexpr const char* kFileNames[kCifarFiles] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
    "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
constexpr const char* kFix = "download it again with scripts/get_cifar10.sh";

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Opens, checks the size, maps, checks every label, and folds what the fingerprint covers
// into `crc`. Returns the mapping.
const uint8_t* map_and_check(const std::string& path, const std::string& dir, const char* name,
                             uLong* crc) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw DataError(path + ": cannot open (" + std::strerror(err) + "); " + dir +
                    " must hold CIFAR-10's binary version (data_batch_1..5.bin, "
                    "test_batch.bin): download it with scripts/get_cifar10.sh");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw DataError(path + ": not a regular file; " + kFix);
  }
  const size_t bytes = size_t(st.st_size);
  if (bytes != kCifarFileBytes) {
    ::close(fd);
    const bool whole = bytes % kCifarRecordBytes == 0;
    throw DataError(path + ": " + std::to_string(bytes) + " bytes" +
                    (whole ? " (" + std::to_string(bytes / kCifarRecordBytes) + " records)"
                           : std::string()) +
                    ", not 10000 records of 3073 bytes: the file is truncated or not "
                    "CIFAR-10's binary version; " + kFix);
  }
  void* addr = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file
  if (addr == MAP_FAILED) {
    throw DataError(path + ": mmap failed (" + std::strerror(map_err) +
                    "); check free address space and that the file is readable");
  }
  const auto* base = static_cast<const uint8_t*>(addr);
  const std::string head = std::string(name) + ":" + std::to_string(bytes) + ";";
  *crc = crc32(*crc, reinterpret_cast<const Bytef*>(head.data()), uInt(head.size()));
  uint8_t labels[kCifarRecordsPerFile];
  for (int r = 0; r < kCifarRecordsPerFile; ++r) {
    const int label = base[size_t(r) * kCifarRecordBytes];
    labels[r] = uint8_t(label);
    if (r % 1000 == 0) *crc = crc32(*crc, base + size_t(r) * kCifarRecordBytes + 1, kCifarImageBytes);
    if (label >= kCifarClasses) {
      ::munmap(addr, bytes);
      throw DataError(path + ": record " + std::to_string(r) + " has label " +
                      std::to_string(label) +
                      ", not 0-9: the file is damaged or not CIFAR-10's binary version "
                      "(CIFAR-100's has two label bytes); " + kFix);
    }
  }
  *crc = crc32(*crc, labels, kCifarRecordsPerFile);
  return base;
}

}  // namespace

const char* set_name(Set s) { return s == Set::kTrain ? "train" : "test"; }

const char* cifar10_file_name(int file) {
  return file >= 0 && file < kCifarFiles ? kFileNames[file] : "?";
}

DataSplit keras_validation_split(double validation_split, int n) {
  if (!(validation_split >= 0.0 && validation_split < 1.0) || n < 0) {
    throw std::invalid_argument("validation split " + std::to_string(validation_split) +
                                " is outside [0, 1)");
  }
  DataSplit s;
  const int split_at = static_cast<int>(n * (1.0 - validation_split));
  s.train_begin = 0;
  s.train_end = split_at;
  s.val_begin = split_at;
  s.val_end = n;
  return s;
}

Cifar10 Cifar10::open(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  if (!exists(d + "/" + kFileNames[0]) &&
      exists(d + "/cifar-10-batches-bin/" + kFileNames[0])) {
    d += "/cifar-10-batches-bin";
  }
  Cifar10 c;
  c.dir_ = d;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (int f = 0; f < kCifarFiles; ++f) {
    c.files_[f] = map_and_check(d + "/" + kFileNames[f], d, kFileNames[f], &crc);  // on throw ~Cifar10 unmaps
    c.lengths_[f] = kCifarFileBytes;
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08lx", crc & 0xffffffffUL);
  c.fingerprint_ = hex;
  c.synthetic_ = exists(d + "/" + kCifarSyntheticMarker);
  return c;
}

void Cifar10::throw_changed_label(Set s, int i, int label) const {
  const int file = s == Set::kTrain ? i / kCifarRecordsPerFile : kCifarTrainFiles;
  const int rec = s == Set::kTrain ? i % kCifarRecordsPerFile : i;
  throw DataError(dir_ + "/" + kFileNames[file] + ": record " + std::to_string(rec) + " now has label " +
                  std::to_string(label) + ", not 0-9: the file was changed while this run had it "
                  "open (it checked every label when it started); restore the data set (" + kFix +
                  ") and resume the run from its last checkpoint");
}

Cifar10::Cifar10(Cifar10&& other) noexcept { *this = std::move(other); }

Cifar10& Cifar10::operator=(Cifar10&& other) noexcept {
  if (this != &other) {
    unmap();
    dir_ = std::move(other.dir_);
    synthetic_ = other.synthetic_;
    fingerprint_ = std::move(other.fingerprint_);
    for (int f = 0; f < kCifarFiles; ++f) {
      files_[f] = std::exchange(other.files_[f], nullptr);
      lengths_[f] = std::exchange(other.lengths_[f], 0);
    }
  }
  return *this;
}

Cifar10::~Cifar10() { unmap(); }

void Cifar10::unmap() {
  for (int f = 0; f < kCifarFiles; ++f) {
    if (files_[f]) ::munmap(const_cast<uint8_t*>(files_[f]), lengths_[f]);
    files_[f] = nullptr;
    lengths_[f] = 0;
  }
}

}  // namespace ts
