#include "tta.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "cifar10.h"

namespace ts {

namespace {
inline int reflect(int i, int n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }
}  // namespace

std::vector<TtaView> tta_views(int level) {
  switch (level) {
    case 0: return {{1.f, false, 0, 0}};
    case 1: return {{0.5f, false, 0, 0}, {0.5f, true, 0, 0}};
    case 2:
      return {{0.25f, false, 0, 0},    {0.25f, true, 0, 0},    // 0.5 mirror(x)
              {0.125f, false, -1, -1}, {0.125f, true, -1, -1},  // 0.25 mirror(window at 0,0)
              {0.125f, false, 1, 1},   {0.125f, true, 1, 1}};   // 0.25 mirror(window at 2,2)
  }
  throw std::invalid_argument("test-time augmentation level " + std::to_string(level) +
                              " is not one of 0, 1, 2");
}

void apply_tta_view(const float* images, int n, const TtaView& v, float* out) {
  constexpr int S = kCifarSide, plane = S * S;
  for (int64_t p = 0; p < int64_t(n) * kCifarChannels; ++p) {
    const float* src = images + p * plane;
    float* dst = out + p * plane;
    for (int y = 0; y < S; ++y) {
      const float* row = src + reflect(y + v.dy, S) * S;
      for (int x = 0; x < S; ++x) {
        // flip(window)(y, x) = window(y, 31 - x)
        const int wx = v.flip ? S - 1 - x : x;
        dst[y * S + x] = row[reflect(wx + v.dx, S)];
      }
    }
  }
}

LogitScore score_logits(const float* logits, const int32_t* labels, int n, int k) {
  LogitScore s;
  for (int i = 0; i < n; ++i) {
    const float* l = logits + int64_t(i) * k;
    int best = 0;
    double mx = l[0];
    for (int j = 1; j < k; ++j)
      if (l[j] > l[best]) best = j;
    for (int j = 1; j < k; ++j) mx = std::max(mx, double(l[j]));
    double sum = 0;
    for (int j = 0; j < k; ++j) sum += std::exp(double(l[j]) - mx);
    s.loss_sum += mx + std::log(sum) - double(l[labels[i]]);
    s.correct += best == labels[i];
  }
  return s;
}

}  // namespace ts
