#include "progress_display.h"

#include <cstdio>

#include "timing.h"

namespace ts {

void ProgressDisplay::step(int64_t epoch, int epochs, int done, int total, double loss,
                           double images_per_s) {
  if (!live_) return;
  const double t = now_seconds();
  if (done < total && t - last_draw_ < 0.1) return;  // at most 10 redraws a second
  last_draw_ = t;
  constexpr int kWidth = 30;
  const int fill = total > 0 ? int(double(kWidth) * done / total) : kWidth;
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[kWidth] = '\0';
  std::printf("\r\033[Kepoch %lld/%d [%s] %d/%d  loss %.4f  %.0f img/s", (long long)epoch, epochs,
              bar, done, total, loss, images_per_s);
  std::fflush(stdout);
  drawn_ = true;
}

void ProgressDisplay::status(const std::string& text) {
  if (!live_) return;
  std::printf("\r\033[K%s", text.c_str());
  std::fflush(stdout);
  drawn_ = true;
}

void ProgressDisplay::clear() {
  if (!drawn_) return;
  std::printf("\r\033[K");
  std::fflush(stdout);
  drawn_ = false;
}

void ProgressDisplay::line(const std::string& text) {
  clear();
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

}  // namespace ts
