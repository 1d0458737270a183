#include "synthetic_cifar10.h"

#include "atomic_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "cifar10.h"
#include "random.h"

namespace ts {

namespace {

constexpr int kSide = kCifarSide;
constexpr int kPlane = kSide * kSide;
constexpr int kPhases = 8;             // stripe phases per class, precomputed
constexpr float kTint = 45.f;          // class colour, +- grey levels
constexpr float kStripe = 40.f;        // stripe amplitude, grey levels
constexpr int kNoise = 30;             // pixel noise, uniform in [-kNoise, kNoise]
constexpr uint64_t kSyntheticSalt = 0x73796e7468657431ull;  // "synthet1"
constexpr double kPi = 3.14159265358979323846;

// templates[class][phase]: [3, 32, 32] offsets from mid-grey.
std::vector<float> class_templates() {
  std::vector<float> t(size_t(kCifarClasses) * kPhases * kCifarImageBytes);
  for (int c = 0; c < kCifarClasses; ++c) {
    // Tints spread around the colour wheel; orientation and frequency differ per class.
    const double hue = 2 * kPi * c / kCifarClasses;
    const float tint[3] = {float(kTint * std::cos(hue)), float(kTint * std::cos(hue - 2 * kPi / 3)),
                           float(kTint * std::cos(hue + 2 * kPi / 3))};
    const double theta = kPi * c / kCifarClasses;
    const double cycles = 1.5 + (c % 3);  // across the image
    for (int p = 0; p < kPhases; ++p) {
      float* img = &t[(size_t(c) * kPhases + p) * kCifarImageBytes];
      const double phase = 2 * kPi * p / kPhases;
      for (int y = 0; y < kSide; ++y) {
        for (int x = 0; x < kSide; ++x) {
          const double u = (x * std::cos(theta) + y * std::sin(theta)) / kSide;
          const float s = float(kStripe * std::sin(2 * kPi * cycles * u + phase));
          for (int ch = 0; ch < 3; ++ch) img[ch * kPlane + y * kSide + x] = tint[ch] + s;
        }
      }
    }
  }
  return t;
}

void fill_file(std::vector<uint8_t>& buf, const std::vector<float>& templates, uint64_t seed,
               int file) {
  Rng rng(mix_seed(seed, static_cast<uint64_t>(file), kSyntheticSalt));
  buf.resize(size_t(kCifarRecordsPerFile) * kCifarRecordBytes);
  for (int r = 0; r < kCifarRecordsPerFile; ++r) {
    uint8_t* rec = &buf[size_t(r) * kCifarRecordBytes];
    const int label = static_cast<int>(rng.below(kCifarClasses));
    const int phase = static_cast<int>(rng.below(kPhases));
    const float bright = float(rng.uniform() * 50.0 - 25.0);
    const float contrast = float(0.7 + rng.uniform() * 0.4);
    const float* tmpl = &templates[(size_t(label) * kPhases + phase) * kCifarImageBytes];
    rec[0] = static_cast<uint8_t>(label);
    uint8_t* px = rec + 1;
    uint64_t bits = 0;
    for (int i = 0; i < kCifarImageBytes; ++i) {
      if ((i & 7) == 0) bits = rng.next();  // 8 noise bytes per draw
      const int noise = int(((bits & 0xff) * (2 * kNoise + 1)) >> 8) - kNoise;
      bits >>= 8;
      const float v = 128.f + bright + contrast * tmpl[i] + float(noise);
      px[i] = static_cast<uint8_t>(std::clamp(v, 0.f, 255.f) + 0.5f);
    }
  }
}


}  // namespace

void write_synthetic_cifar10(const std::string& dir, uint64_t seed) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create directory (" + ec.message() + ")");

  const std::vector<float> templates = class_templates();
  std::vector<uint8_t> buf;
  for (int file = 0; file < kCifarFiles; ++file) {
    fill_file(buf, templates, seed, file);
    write_file_atomically(dir + "/" + cifar10_file_name(file), buf.data(), buf.size(), /*durable=*/true);
  }
  const std::string meta =
      "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  write_file_atomically(dir + "/batches.meta.txt", meta, true);
  const std::string marker =
      "Synthetic CIFAR-10-shaped data written by threadsplit's write_synthetic_cifar10, seed " +
      std::to_string(seed) +
      ".\nEach class is a tint plus stripes of its own orientation, under noise. Timings on it\n"
      "are valid; accuracies are not comparable with CIFAR-10's.\n";
  write_file_atomically(dir + "/SYNTHETIC.txt", marker, true);
}

}  // namespace ts
