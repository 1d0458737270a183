// What the user watches: a live progress bar for the steps of an epoch (only when stdout is a
// terminal, or when asked), and one line per finished epoch, which always prints.
#pragma once
#include <cstdint>
#include <string>

namespace ts {

class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool live) : live_(live) {}
  bool live() const { return live_; }

  // Redraws the bar: "epoch 2/3 [=====>     ] 120/352  loss 1.7321  1180 img/s".
  void step(int64_t epoch, int epochs, int done, int total, double loss, double images_per_s);
  void status(const std::string& text);  // a transient line (evaluation running ...)
  // Erases the bar so a permanent line can follow.
  void clear();
  // Prints a permanent line (clearing the bar first).
  void line(const std::string& text);

 private:
  bool live_;
  bool drawn_ = false;
  double last_draw_ = 0;
};

}  // namespace ts
