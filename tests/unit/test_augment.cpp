// Batch assembly and augmentation, checked against a plain reference written here: pad the
// image to 40x40 with zeros, take the window, mirror it.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "augment.h"
#include "cifar10.h"
#include "synthetic_cifar10.h"

using ts::Augment;
using ts::AugmentDraw;
using ts::Cifar10;
using ts::Set;

namespace {

const Cifar10& data() {
  static const Cifar10 c = [] {
    const std::string dir = std::string(TEST_TMP_DIR) + "/augment/synthetic";
    ts::ensure_synthetic_cifar10(dir, 3);
    return Cifar10::open(dir);
  }();
  return c;
}

// The definition, spelled out: output (c, y, x) = padded (c, 4 + y + dy, 4 + x' + dx),
// x' = flip ? 31 - x : x.
std::vector<float> reference(const uint8_t* img, const AugmentDraw& d) {
  std::vector<uint8_t> padded(3 * 40 * 40, 0);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) padded[(c * 40 + y + 4) * 40 + x + 4] = img[(c * 32 + y) * 32 + x];
  std::vector<float> out(3072);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const int xs = d.flip ? 31 - x : x;
        out[(c * 32 + y) * 32 + x] = padded[(c * 40 + 4 + y + d.dy) * 40 + 4 + xs + d.dx] / 255.f;
      }
  return out;
}

std::vector<float> assemble(const std::vector<int32_t>& idx, Augment a, uint64_t seed,
                            int64_t epoch, std::vector<int32_t>* labels = nullptr) {
  std::vector<float> images(idx.size() * 3072);
  std::vector<int32_t> l(idx.size());
  ts::assemble_batch(data(), Set::kTrain, idx.data(), int(idx.size()), a, seed, epoch,
                     images.data(), l.data());
  if (labels) *labels = l;
  return images;
}

std::vector<float> sample(const std::vector<float>& batch, int pos) {
  return std::vector<float>(batch.begin() + pos * 3072, batch.begin() + (pos + 1) * 3072);
}

}  // namespace

TEST_CASE("parse_augment accepts none, flip and flip,crop only", "[data]") {
  CHECK(ts::parse_augment("none") == Augment::kNone);
  CHECK(ts::parse_augment("flip") == Augment::kFlip);
  CHECK(ts::parse_augment("flip,crop") == Augment::kFlipCrop);
  for (Augment a : {Augment::kNone, Augment::kFlip, Augment::kFlipCrop})
    CHECK(ts::parse_augment(ts::augment_name(a)) == a);
  for (const char* bad : {"", "crop", "Flip", "flip, crop", "crop,flip", "flip,crop,"}) {
    INFO(bad);
    CHECK_THROWS_WITH(ts::parse_augment(bad), Catch::Contains("flip,crop"));
  }
}

TEST_CASE("without augmentation a batch is pixel / 255 in NCHW, labels alongside", "[data]") {
  const std::vector<int32_t> idx = {0, 49999, 17, 10000, 17};
  std::vector<int32_t> labels;
  const auto images = assemble(idx, Augment::kNone, 1, 0, &labels);
  for (size_t i = 0; i < idx.size(); ++i) {
    const uint8_t* img = data().image(Set::kTrain, idx[i]);
    CHECK(labels[i] == data().label(Set::kTrain, idx[i]));
    int wrong = 0;
    for (int k = 0; k < 3072; ++k) wrong += images[i * 3072 + k] != float(img[k]) / 255.f;
    CHECK(wrong == 0);
  }
}

TEST_CASE("augmentation draws are fair and cover every crop offset", "[data]") {
  int flips = 0, flips_differ = 0;
  std::set<int> dys, dxs;
  for (int i = 0; i < 4000; ++i) {
    const AugmentDraw f = ts::draw_augment(Augment::kFlip, 1, 2, Set::kTrain, i);
    const AugmentDraw fc = ts::draw_augment(Augment::kFlipCrop, 1, 2, Set::kTrain, i);
    CHECK(f.dx == 0);
    CHECK(f.dy == 0);
    flips += fc.flip;
    flips_differ += f.flip != fc.flip;
    dys.insert(fc.dy);
    dxs.insert(fc.dx);
    const AugmentDraw none = ts::draw_augment(Augment::kNone, 1, 2, Set::kTrain, i);
    CHECK((!none.flip && none.dx == 0 && none.dy == 0));
  }
  CHECK(flips > 1800);  // p = 0.5: expected 2000, sd about 32
  CHECK(flips < 2200);
  CHECK(flips_differ == 0);  // both modes flip the same records
  CHECK(dys == std::set<int>{-4, -3, -2, -1, 0, 1, 2, 3, 4});
  CHECK(dxs == std::set<int>{-4, -3, -2, -1, 0, 1, 2, 3, 4});
  // Another epoch, another draw.
  int same = 0;
  for (int i = 0; i < 200; ++i) {
    const AugmentDraw a = ts::draw_augment(Augment::kFlipCrop, 1, 2, Set::kTrain, i);
    const AugmentDraw b = ts::draw_augment(Augment::kFlipCrop, 1, 3, Set::kTrain, i);
    same += a.flip == b.flip && a.dx == b.dx && a.dy == b.dy;
  }
  CHECK(same < 20);  // 1/162 expected to match by chance
}

TEST_CASE("flip mirrors each row", "[data]") {
  const uint8_t* img = data().image(Set::kTrain, 5);
  std::vector<float> out(3072);
  ts::assemble_image(img, AugmentDraw{true, 0, 0}, out.data());
  int wrong = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        wrong += out[(c * 32 + y) * 32 + x] != img[(c * 32 + y) * 32 + 31 - x] / 255.f;
  CHECK(wrong == 0);
}

TEST_CASE("crop shifts the image and fills the uncovered border with zeros", "[data]") {
  const uint8_t* img = data().image(Set::kTrain, 6);
  std::vector<float> out(3072);
  // dy = -3, dx = 2: rows 0-2 come from above the image (zeros), columns 30-31 from right
  // of it (zeros); pixel (y, x) elsewhere is input (y - 3, x + 2).
  ts::assemble_image(img, AugmentDraw{false, -3, 2}, out.data());
  int wrong = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const float want = (y < 3 || x >= 30) ? 0.f : img[(c * 32 + y - 3) * 32 + x + 2] / 255.f;
        wrong += out[(c * 32 + y) * 32 + x] != want;
      }
  CHECK(wrong == 0);
  // Every combination of flip and offset agrees with the padded-window reference.
  for (int flip = 0; flip < 2; ++flip)
    for (int dy = -4; dy <= 4; ++dy)
      for (int dx = -4; dx <= 4; ++dx) {
        const AugmentDraw d{flip != 0, dy, dx};
        ts::assemble_image(img, d, out.data());
        INFO("flip " << flip << " dy " << dy << " dx " << dx);
        CHECK(out == reference(img, d));
      }
}

TEST_CASE("a record is augmented the same wherever and with whatever it is batched", "[data]") {
  // Worker A gets {7, 300, 42}, worker B gets {42, 9, 7, 11}, worker C gets {7} alone.
  const auto a = assemble({7, 300, 42}, Augment::kFlipCrop, 99, 4);
  const auto b = assemble({42, 9, 7, 11}, Augment::kFlipCrop, 99, 4);
  const auto c = assemble({7}, Augment::kFlipCrop, 99, 4);
  CHECK(sample(a, 0) == sample(b, 2));
  CHECK(sample(a, 0) == sample(c, 0));
  CHECK(sample(a, 2) == sample(b, 0));
  // ... and matches the reference for its own draw.
  const AugmentDraw d = ts::draw_augment(Augment::kFlipCrop, 99, 4, Set::kTrain, 7);
  CHECK(sample(c, 0) == reference(data().image(Set::kTrain, 7), d));
  // Over a batch, augmentation changes most images, and differently in another epoch.
  std::vector<int32_t> idx(64);
  for (int i = 0; i < 64; ++i) idx[i] = 1000 + i;
  const auto plain = assemble(idx, Augment::kNone, 99, 4);
  const auto e4 = assemble(idx, Augment::kFlipCrop, 99, 4);
  const auto e5 = assemble(idx, Augment::kFlipCrop, 99, 5);
  int changed = 0, differ = 0;
  for (int i = 0; i < 64; ++i) {
    changed += sample(plain, i) != sample(e4, i);
    differ += sample(e4, i) != sample(e5, i);
  }
  CHECK(changed > 50);  // 1/162 of draws are the identity
  CHECK(differ > 50);
}

TEST_CASE("assemble_batch rejects a record index outside the set", "[data]") {
  std::vector<float> images(3072 * 2);
  std::vector<int32_t> labels(2);
  const int32_t bad[] = {3, 10000};
  CHECK_THROWS_AS(ts::assemble_batch(data(), Set::kTest, bad, 2, Augment::kNone, 0, 0,
                                     images.data(), labels.data()),
                  std::out_of_range);
  const int32_t neg[] = {-1};
  CHECK_THROWS_AS(ts::assemble_batch(data(), Set::kTrain, neg, 1, Augment::kNone, 0, 0,
                                     images.data(), labels.data()),
                  std::out_of_range);
}

namespace {
// PyTorch's F.pad(..., 'reflect') by 2, spelled out on one plane: index -1 reads 1, 32 reads 30.
int reflect_index(int i) { return i < 0 ? -i : i > 31 ? 62 - i : i; }
}  // namespace

TEST_CASE("airbench's augmentation: a reflect-padded translation of at most 2, flips alternating by epoch",
          "[data]") {
  CHECK(ts::parse_augment("flip-alt,translate2") == Augment::kFlipAltTranslate2);
  CHECK(ts::parse_augment(ts::augment_name(Augment::kFlipAltTranslate2)) == Augment::kFlipAltTranslate2);
  std::set<int> offsets;
  int flips_epoch0 = 0;
  for (int32_t i = 0; i < 400; ++i) {
    const AugmentDraw d0 = ts::draw_augment(Augment::kFlipAltTranslate2, 9, 0, Set::kTrain, i);
    const AugmentDraw d1 = ts::draw_augment(Augment::kFlipAltTranslate2, 9, 1, Set::kTrain, i);
    const AugmentDraw d2 = ts::draw_augment(Augment::kFlipAltTranslate2, 9, 2, Set::kTrain, i);
    CHECK(d0.reflect);
    CHECK(d1.flip != d0.flip);  // every record seen both ways in two epochs
    CHECK(d2.flip == d0.flip);
    CHECK(std::abs(d0.dy) <= 2);
    CHECK(std::abs(d0.dx) <= 2);
    offsets.insert(d0.dy * 10 + d0.dx);
    flips_epoch0 += d0.flip;
  }
  CHECK(offsets.size() == 25);  // every offset of the 5 x 5 windows occurs
  CHECK(flips_epoch0 > 150);
  CHECK(flips_epoch0 < 250);
  // The pixels: the window of the reflect-padded image, then mirrored.
  const uint8_t* img = data().image(Set::kTrain, 7);
  for (const AugmentDraw d : {AugmentDraw{false, 2, -2, true}, AugmentDraw{true, -2, 1, true},
                              AugmentDraw{true, 0, 0, true}}) {
    std::vector<float> out(3072);
    ts::assemble_image(img, d, out.data());
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const int xs = d.flip ? 31 - x : x;
          const float want = img[(c * 32 + reflect_index(y + d.dy)) * 32 + reflect_index(xs + d.dx)] / 255.f;
          REQUIRE(out[size_t((c * 32 + y) * 32 + x)] == want);
        }
  }
}

TEST_CASE("normalization: (pixel / 255 - mean) / std per channel, zero padding normalized too", "[data]") {
  const uint8_t* img = data().image(Set::kTrain, 3);
  std::vector<float> plain(3072), norm(3072);
  ts::assemble_image(img, AugmentDraw{}, plain.data());
  ts::assemble_image(img, AugmentDraw{}, norm.data(), true);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 1024; ++i) {
      const size_t at = size_t(c * 1024 + i);
      REQUIRE(norm[at] == Approx((plain[at] - ts::kCifarMean[c]) / ts::kCifarStd[c]).epsilon(1e-6));
    }
  CHECK(ts::kCifarMean[0] == 0.4914f);
  CHECK(ts::kCifarStd[2] == 0.2616f);
  // A zero-padded crop: the pad pixel is x = 0, normalized.
  std::vector<float> crop(3072);
  ts::assemble_image(img, AugmentDraw{false, -4, 0, false}, crop.data(), true);
  CHECK(crop[0] == Approx(-ts::kCifarMean[0] / ts::kCifarStd[0]));
  // Without normalize nothing changed: today's augmentations stay bit for bit.
  const std::vector<int32_t> idx = {0, 5, 9};
  CHECK(assemble(idx, Augment::kFlipCrop, 4, 2) == assemble(idx, Augment::kFlipCrop, 4, 2));
}
