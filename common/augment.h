// Batch assembly: records -> float NCHW in [0, 1] plus int32 labels, with optional
// augmentation. Every random draw is keyed by (run seed, epoch, set, record index), never by
// position in a batch or by process, so a record is augmented the same way whichever worker
// gets it and wherever it sits in its batch.
#pragma once
#include <cstdint>
#include <string>

#include "cifar10.h"

namespace ts {

enum class Augment {
  kNone,
  kFlip,      // horizontal flip with p = 0.5
  kFlipCrop,  // flip, then a random 32x32 window of the image zero-padded to 40x40
  // airbench's: alternating flip (each record's flip drawn once per run from (seed, index),
  // inverted on odd epochs, so every record is seen both ways in two epochs), and a random
  // 32x32 window of the image reflect-padded to 36x36 (offsets uniform in -2..2).
  kFlipAltTranslate2,
};

// "none", "flip", "flip,crop", "flip-alt,translate2"; throws std::invalid_argument listing
// them otherwise.
Augment parse_augment(const std::string& text);
const char* augment_name(Augment a);  // the inverse of parse_augment

constexpr int kCropPad = 4;
constexpr int kTranslatePad = 2;  // kFlipAltTranslate2

// What augmentation does to one record: crop, then flip. With the image padded by the crop's
// padding on every side, output pixel (c, y, x) = input (c, y + dy, x' + dx), where
// x' = flip ? 31 - x : x; where that falls outside the image: 0 (zero padding), or with
// `reflect` the pixel mirrored at the edge without repeating it (PyTorch's F.pad 'reflect':
// row -1 reads row 1, row 32 reads row 30).
struct AugmentDraw {
  bool flip = false;
  int dy = 0, dx = 0;    // crop offsets, uniform in [-pad, pad]
  bool reflect = false;  // reflect padding instead of zeros
};
AugmentDraw draw_augment(Augment a, uint64_t seed, int64_t epoch, Set s, int32_t index);

// How bytes become floats: x = pixel / 255, or normalized per channel,
// (x - mean_c) / std_c with CIFAR-10's training-set statistics (airbench's).
extern const float kCifarMean[3];
extern const float kCifarStd[3];

// One image (3072 bytes, CHW) -> 3072 floats, pixel / 255 (normalized when `normalize`)
// moved as `d` says. Padding is applied before normalization (a zero pad pixel is x = 0).
void assemble_image(const uint8_t* image, const AugmentDraw& d, float* out, bool normalize = false);

// images_out: [n, 3, 32, 32] floats; labels_out: [n]. Throws std::out_of_range naming the
// first index outside [0, data.size(s)).
void assemble_batch(const Cifar10& data, Set s, const int32_t* idx, int n, Augment augment,
                    uint64_t seed, int64_t epoch, float* images_out, int32_t* labels_out,
                    bool normalize = false);

}  // namespace ts
