// Test-time augmentation: the logits of a few transformed copies of each test image, weighted
// and summed (airbench's). On images already assembled ([n, 3, 32, 32] floats, normalized or
// not: the transforms move pixels, so they commute with per-channel normalization).
//   level 0: x
//   level 1: mirror(x)                         mirror(z) = 0.5 net(z) + 0.5 net(flip z)
//   level 2: 0.5 mirror(x) + 0.25 mirror(a) + 0.25 mirror(b), a and b the 32x32 windows at
//            (0, 0) and (2, 2) of x reflect-padded by one pixel (shifted by one pixel down-right
//            and up-left)
#pragma once
#include <cstdint>
#include <vector>

namespace ts {

struct TtaView {
  float weight = 1;
  bool flip = false;
  int dy = 0, dx = 0;  // the view's pixel (y, x) is x's (reflect(y + dy), reflect(x + dx))
};

// The views of a level, their weights summing to 1. Throws std::invalid_argument outside 0..2.
std::vector<TtaView> tta_views(int level);

// images [n, 3, 32, 32] -> out [n, 3, 32, 32] transformed as `v` says (reflect padding).
void apply_tta_view(const float* images, int n, const TtaView& v, float* out);

// Cross-entropy (natural log, in double) and first-arg-max accuracy of combined logits
// [n, k]: what the evaluation reports.
struct LogitScore {
  double loss_sum = 0;
  int correct = 0;
};
LogitScore score_logits(const float* logits, const int32_t* labels, int n, int k);

}  // namespace ts
