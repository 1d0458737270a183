#include "augment.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "random.h"

namespace ts {

namespace {

constexpr int kSide = kCifarSide;
constexpr int kPlane = kSide * kSide;
// Keeps augmentation streams apart from other draws keyed by (seed, epoch, index).
constexpr uint64_t kAugmentSalt = 0x6175676d656e7431ull;  // "augment1"

// pixel / 255.f for every byte: one load per pixel instead of a convert and a divide.
struct ByteToUnit {
  std::array<float, 256> v;
  ByteToUnit() {
    for (int i = 0; i < 256; ++i) v[i] = static_cast<float>(i) / 255.f;
  }
};
const ByteToUnit kToUnit;

}  // namespace

Augment parse_augment(const std::string& text) {
  if (text == "none") return Augment::kNone;
  if (text == "flip") return Augment::kFlip;
  if (text == "flip,crop") return Augment::kFlipCrop;
  throw std::invalid_argument("unknown augmentation \"" + text +
                              "\": expected none, flip or flip,crop");
}

const char* augment_name(Augment a) {
  switch (a) {
    case Augment::kNone: return "none";
    case Augment::kFlip: return "flip";
    case Augment::kFlipCrop: return "flip,crop";
  }
  return "?";
}

AugmentDraw draw_augment(Augment a, uint64_t seed, int64_t epoch, Set s, int32_t index) {
  AugmentDraw d;
  if (a == Augment::kNone) return d;
  Rng rng(mix_seed(seed, static_cast<uint64_t>(epoch),
                   static_cast<uint64_t>(static_cast<int64_t>(index)),
                   kAugmentSalt ^ static_cast<uint64_t>(s)));
  // The flip is drawn first in both modes, so "flip" and "flip,crop" flip the same records.
  d.flip = (rng.next() >> 63) != 0;
  if (a == Augment::kFlipCrop) {
    d.dy = static_cast<int>(rng.below(2 * kCropPad + 1)) - kCropPad;
    d.dx = static_cast<int>(rng.below(2 * kCropPad + 1)) - kCropPad;
  }
  return d;
}

void assemble_image(const uint8_t* image, const AugmentDraw& d, float* out) {
  const float* lut = kToUnit.v.data();
  if (!d.flip && d.dy == 0 && d.dx == 0) {
    for (int i = 0; i < kCifarImageBytes; ++i) out[i] = lut[image[i]];
    return;
  }
  // Output columns [x0, x1) read inside the image; the rest is padding.
  const int x0 = d.flip ? std::max(0, d.dx) : std::max(0, -d.dx);
  const int x1 = d.flip ? std::min(kSide, kSide + d.dx) : std::min(kSide, kSide - d.dx);
  for (int c = 0; c < kCifarChannels; ++c) {
    for (int y = 0; y < kSide; ++y) {
      float* o = out + c * kPlane + y * kSide;
      const int sy = y + d.dy;
      if (sy < 0 || sy >= kSide) {
        std::fill(o, o + kSide, 0.f);
        continue;
      }
      const uint8_t* row = image + c * kPlane + sy * kSide;
      std::fill(o, o + x0, 0.f);
      if (d.flip) {
        const int shift = (kSide - 1) + d.dx;  // column x reads row[shift - x]
        for (int x = x0; x < x1; ++x) o[x] = lut[row[shift - x]];
      } else {
        for (int x = x0; x < x1; ++x) o[x] = lut[row[x + d.dx]];
      }
      std::fill(o + x1, o + kSide, 0.f);
    }
  }
}

void assemble_batch(const Cifar10& data, Set s, const int32_t* idx, int n, Augment augment,
                    uint64_t seed, int64_t epoch, float* images_out, int32_t* labels_out) {
  const int size = data.size(s);
  for (int i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= size) {
      throw std::out_of_range(std::string("record index ") + std::to_string(idx[i]) +
                              " at batch position " + std::to_string(i) + " is outside the " +
                              set_name(s) + " set [0, " + std::to_string(size) + ")");
    }
  }
  for (int i = 0; i < n; ++i) {
    const AugmentDraw d = draw_augment(augment, seed, epoch, s, idx[i]);
    assemble_image(data.image(s, idx[i]), d, images_out + size_t(i) * kCifarImageBytes);
    labels_out[i] = data.checked_label(s, idx[i]);  // DataError if rewritten since open
  }
}

}  // namespace ts
