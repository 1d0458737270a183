// A CIFAR-shaped synthetic data set for machines with no copy of CIFAR-10: the six files of
// the official binary layout, deterministic in a seed, and learnable -- each class has its
// own tint and its own stripe orientation and frequency, under per-image brightness,
// contrast, stripe phase and pixel noise, so a short training run's loss clearly falls.
// Speed measurements on it are as valid as on the real data; accuracies are not comparable.
#pragma once
#include <cstdint>
#include <string>

namespace ts {

// Writes data_batch_1..5.bin, test_batch.bin, batches.meta.txt and a SYNTHETIC.txt marker
// (Cifar10::synthetic() reports it) into `dir`, creating it if missing. Each file is written
// to a temporary name and renamed, so a reader never sees a torn file. Throws
// std::runtime_error naming the file when a write fails.
void write_synthetic_cifar10(const std::string& dir, uint64_t seed);

// The same, but only when `dir` does not already hold the set this seed writes (its marker,
// written last, names the seed and the generator's version). For fixtures that tests,
// benchmarks and fuzzers share: 176 MB are written once, not on every use. Concurrent
// callers may both write; the files are renamed into place, so either result is whole.
void ensure_synthetic_cifar10(const std::string& dir, uint64_t seed);

}  // namespace ts
