// Wall-clock timing for phase accounting: steady_clock, seconds as double.
#pragma once
#include <chrono>

namespace ts {

inline double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Measures from construction (or the last restart) to now.
class Stopwatch {
 public:
  Stopwatch() : start_(now_seconds()) {}
  double elapsed() const { return now_seconds() - start_; }
  double restart() {
    const double t = now_seconds();
    const double e = t - start_;
    start_ = t;
    return e;
  }

 private:
  double start_;
};

}  // namespace ts
