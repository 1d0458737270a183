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

// pixel / 255.f for every byte: one load per pixel instead of a convert and a divide; and
// the same normalized, one table per channel. pad[c] is what a zero pad pixel becomes.
struct ByteToUnit {
  std::array<float, 256> v;
  std::array<std::array<float, 256>, 3> norm;
  std::array<float, 3> norm_pad;
  ByteToUnit() {
    for (int i = 0; i < 256; ++i) v[i] = static_cast<float>(i) / 255.f;
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 256; ++i) norm[c][i] = (v[i] - kCifarMean[c]) / kCifarStd[c];
      norm_pad[c] = (0.f - kCifarMean[c]) / kCifarStd[c];
    }
  }
};

// PyTorch's reflect padding of index i into [0, n): no edge repeat. |offset| <= n - 1.
inline int reflect(int i, int n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

}  // namespace

const float kCifarMean[3] = {0.4914f, 0.4822f, 0.4465f};
const float kCifarStd[3] = {0.2470f, 0.2435f, 0.2616f};

namespace {
const ByteToUnit kToUnit;
}  // namespace

Augment parse_augment(const std::string& text) {
  if (text == "none") return Augment::kNone;
  if (text == "flip") return Augment::kFlip;
  if (text == "flip,crop") return Augment::kFlipCrop;
  if (text == "flip-alt,translate2") return Augment::kFlipAltTranslate2;
  throw std::invalid_argument("unknown augmentation \"" + text +
                              "\": expected none, flip, flip,crop or flip-alt,translate2");
}

const char* augment_name(Augment a) {
  switch (a) {
    case Augment::kNone: return "none";
    case Augment::kFlip: return "flip";
    case Augment::kFlipCrop: return "flip,crop";
    case Augment::kFlipAltTranslate2: return "flip-alt,translate2";
  }
  return "?";
}

AugmentDraw draw_augment(Augment a, uint64_t seed, int64_t epoch, Set s, int32_t index) {
  AugmentDraw d;
  if (a == Augment::kNone) return d;
  if (a == Augment::kFlipAltTranslate2) {
    // The flip from (seed, index) alone, the same every epoch, inverted on odd epochs; the
    // translation from (seed, epoch, index).
    Rng flip_rng(mix_seed(seed, ~uint64_t(0), static_cast<uint64_t>(static_cast<int64_t>(index)),
                          kAugmentSalt ^ static_cast<uint64_t>(s) ^ 0xf11full));
    d.flip = ((flip_rng.next() >> 63) != 0) != (epoch % 2 == 1);
    Rng rng(mix_seed(seed, static_cast<uint64_t>(epoch),
                     static_cast<uint64_t>(static_cast<int64_t>(index)),
                     kAugmentSalt ^ static_cast<uint64_t>(s) ^ 0x7261ull));
    d.dy = static_cast<int>(rng.below(2 * kTranslatePad + 1)) - kTranslatePad;
    d.dx = static_cast<int>(rng.below(2 * kTranslatePad + 1)) - kTranslatePad;
    d.reflect = true;
    return d;
  }
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

void assemble_image(const uint8_t* image, const AugmentDraw& d, float* out, bool normalize) {
  const float* luts[3] = {kToUnit.v.data(), kToUnit.v.data(), kToUnit.v.data()};
  float pads[3] = {0.f, 0.f, 0.f};
  if (normalize)
    for (int c = 0; c < 3; ++c) {
      luts[c] = kToUnit.norm[size_t(c)].data();
      pads[c] = kToUnit.norm_pad[size_t(c)];
    }
  if (!d.flip && d.dy == 0 && d.dx == 0) {
    for (int c = 0; c < kCifarChannels; ++c) {
      const float* lut = luts[c];
      for (int i = c * kPlane; i < (c + 1) * kPlane; ++i) out[i] = lut[image[i]];
    }
    return;
  }
  if (d.reflect) {
    for (int c = 0; c < kCifarChannels; ++c) {
      const float* lut = luts[c];
      for (int y = 0; y < kSide; ++y) {
        const uint8_t* row = image + c * kPlane + reflect(y + d.dy, kSide) * kSide;
        float* o = out + c * kPlane + y * kSide;
        for (int x = 0; x < kSide; ++x) {
          const int sx = (d.flip ? kSide - 1 - x : x) + d.dx;
          o[x] = lut[row[reflect(sx, kSide)]];
        }
      }
    }
    return;
  }
  // Output columns [x0, x1) read inside the image; the rest is padding.
  const int x0 = d.flip ? std::max(0, d.dx) : std::max(0, -d.dx);
  const int x1 = d.flip ? std::min(kSide, kSide + d.dx) : std::min(kSide, kSide - d.dx);
  for (int c = 0; c < kCifarChannels; ++c) {
    const float* lut = luts[c];
    const float pad = pads[c];
    for (int y = 0; y < kSide; ++y) {
      float* o = out + c * kPlane + y * kSide;
      const int sy = y + d.dy;
      if (sy < 0 || sy >= kSide) {
        std::fill(o, o + kSide, pad);
        continue;
      }
      const uint8_t* row = image + c * kPlane + sy * kSide;
      std::fill(o, o + x0, pad);
      if (d.flip) {
        const int shift = (kSide - 1) + d.dx;  // column x reads row[shift - x]
        for (int x = x0; x < x1; ++x) o[x] = lut[row[shift - x]];
      } else {
        for (int x = x0; x < x1; ++x) o[x] = lut[row[x + d.dx]];
      }
      std::fill(o + x1, o + kSide, pad);
    }
  }
}

void assemble_batch(const Cifar10& data, Set s, const int32_t* idx, int n, Augment augment,
                    uint64_t seed, int64_t epoch, float* images_out, int32_t* labels_out,
                    bool normalize) {
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
    assemble_image(data.image(s, idx[i]), d, images_out + size_t(i) * kCifarImageBytes, normalize);
    labels_out[i] = data.checked_label(s, idx[i]);  // DataError if rewritten since open
  }
}

}  // namespace ts
