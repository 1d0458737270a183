// CIFAR-10, binary version, memory-mapped read-only.
//
// Each .bin file is 10000 records of 3073 bytes: 1 label byte (0-9), then 3072 pixel bytes in
// planes R, G, B, each 32x32 row-major -- already the C, H, W order of one NCHW sample.
// The files are mapped MAP_SHARED, so the workers on one box share one copy of the pages.
//
// Record indices: Set::kTrain 0..49999 = data_batch_1 records 0..9999, then data_batch_2, ...;
// Set::kTest 0..9999 = test_batch.bin.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "user_error.h"

namespace ts {

// A data set file that is missing or damaged; the message names the file, the problem and
// what to do.
class DataError : public UserError {
 public:
  using UserError::UserError;
};

enum class Set { kTrain, kTest };
const char* set_name(Set s);  // "train", "test"

constexpr int kCifarSide = 32;
constexpr int kCifarChannels = 3;
constexpr int kCifarImageBytes = kCifarChannels * kCifarSide * kCifarSide;  // 3072
constexpr int kCifarRecordBytes = 1 + kCifarImageBytes;                     // 3073
constexpr int kCifarRecordsPerFile = 10000;
constexpr int kCifarTrainFiles = 5;
constexpr int kCifarTrainRecords = kCifarTrainFiles * kCifarRecordsPerFile;  // 50000
constexpr int kCifarTestRecords = kCifarRecordsPerFile;                      // 10000
constexpr int kCifarClasses = 10;

// data_batch_1.bin .. data_batch_5.bin, then test_batch.bin.
constexpr int kCifarFiles = kCifarTrainFiles + 1;
const char* cifar10_file_name(int file);
constexpr size_t kCifarFileBytes = size_t(kCifarRecordsPerFile) * kCifarRecordBytes;
// The file write_synthetic_cifar10 leaves beside a generated set (synthetic_cifar10.h).
constexpr const char* kCifarSyntheticMarker = "SYNTHETIC.txt";

// The split Keras' fit(validation_split=0.1) makes: the *last* 10% of the training records
// (taken before any shuffle) are validation. Test is test_batch.bin, untouched.
struct DataSplit {
  int train_begin = 0, train_end = 45000;  // Set::kTrain records [train_begin, train_end)
  int val_begin = 45000, val_end = 50000;  // Set::kTrain records [val_begin, val_end)
  int train_size() const { return train_end - train_begin; }
  int val_size() const { return val_end - val_begin; }
};

// Keras' rule: split_at = int(n * (1 - validation_split)). Throws std::invalid_argument
// unless 0 <= validation_split < 1.
DataSplit keras_validation_split(double validation_split = 0.1, int n = kCifarTrainRecords);

class Cifar10 {
 public:
  // Maps and validates the six files in `dir` (or in `dir`/cifar-10-batches-bin, so the
  // download script's target works too). Throws DataError on the first missing or damaged
  // file. Validation reads every label, so it touches every page once.
  static Cifar10 open(const std::string& dir);

  Cifar10(Cifar10&& other) noexcept;
  Cifar10& operator=(Cifar10&& other) noexcept;
  Cifar10(const Cifar10&) = delete;
  Cifar10& operator=(const Cifar10&) = delete;
  ~Cifar10();

  int size(Set s) const { return s == Set::kTrain ? kCifarTrainRecords : kCifarTestRecords; }
  // 3072 bytes, planes R, G, B of 32x32. i must be in [0, size(s)).
  const uint8_t* image(Set s, int i) const { return record(s, i) + 1; }
  int label(Set s, int i) const { return record(s, i)[0]; }
  // The label, checked again at use: the files are mapped, so a copy rewritten in place
  // after open() shows through. Throws DataError (naming file and record) outside 0..9.
  int checked_label(Set s, int i) const {
    const int l = label(s, i);
    if (l >= kCifarClasses) throw_changed_label(s, i, l);
    return l;
  }

  const std::string& dir() const { return dir_; }
  // True when `dir` holds the marker write_synthetic_cifar10 leaves: say so in reports.
  bool synthetic() const { return synthetic_; }
  // Eight hex digits: CRC-32 over each file's name and size, every label, and the images of
  // every 1000th record, as open() read them. Equal copies agree; a copy with one label (or
  // a sampled image) changed does not. The coordinator compares its own with each worker's.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  Cifar10() = default;
  const uint8_t* record(Set s, int i) const {
    const int file = s == Set::kTrain ? i / kCifarRecordsPerFile : kCifarTrainFiles;
    const int rec = s == Set::kTrain ? i % kCifarRecordsPerFile : i;
    return files_[file] + size_t(rec) * kCifarRecordBytes;
  }
  void unmap();
  [[noreturn]] void throw_changed_label(Set s, int i, int label) const;

  std::string dir_;
  std::string fingerprint_;
  bool synthetic_ = false;
  const uint8_t* files_[kCifarFiles] = {};
  size_t lengths_[kCifarFiles] = {};
};

}  // namespace ts
