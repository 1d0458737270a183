// airbench's lookahead EMA (common/lookahead.h) against values worked out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lookahead.h"

using namespace ts;

namespace {

// Ten (or `total`) updates of a two-float state that each add (1, -0.5), the lookahead after
// each, K = 5; returns the state at the end and records which steps the lookahead acted on.
std::vector<float> run(int64_t total, std::vector<int64_t>* acted) {
  std::vector<float> state = {0.f, 2.f}, ema = {123.f, 456.f};  // the EMA's start is overwritten
  for (int64_t s = 1; s <= total; ++s) {
    state[0] += 1.f;
    state[1] -= 0.5f;
    if (lookahead_update(state.data(), ema.data(), 2, s, total, 5)) acted->push_back(s);
  }
  return state;
}

}  // namespace

TEST_CASE("lookahead's decay is 0.95^5 (s / T)^3", "[lookahead]") {
  CHECK(lookahead_decay(10, 10) == Approx(0.7737809375));
  CHECK(lookahead_decay(5, 10) == Approx(0.7737809375 / 8));
  CHECK(lookahead_decay(0, 10) == 0.0);
}

TEST_CASE("lookahead over 10 steps with K = 5: the EMA starts at step 5 and the run ends on it", "[lookahead]") {
  std::vector<int64_t> acted;
  const std::vector<float> end = run(10, &acted);
  CHECK(acted == std::vector<int64_t>{5, 10});
  // Step 5: state (5, -0.5) = ema. Step 10: state (10, -3), decay 0.7737809375:
  //   ema = (5, -0.5) + 0.2262190625 * ((10, -3) - (5, -0.5)) = (6.1310953125, -1.06554765625)
  CHECK(end[0] == Approx(6.1310953125).epsilon(1e-6));
  CHECK(end[1] == Approx(-1.06554765625).epsilon(1e-6));
}

TEST_CASE("lookahead's last step puts the state back to the EMA when it is not one of the K", "[lookahead]") {
  std::vector<int64_t> acted;
  const std::vector<float> end = run(12, &acted);
  CHECK(acted == std::vector<int64_t>{5, 10, 12});
  // Step 10: decay 0.7737809375 (10/12)^3 = 0.44779; ema = (5, -0.5) + (1 - decay) (5, -2.5);
  // steps 11, 12 move the state on, and the last step (decay 1) returns it to that EMA.
  const double decay = 0.7737809375 * std::pow(10.0 / 12.0, 3);
  CHECK(end[0] == Approx(5 + (1 - decay) * 5).epsilon(1e-6));
  CHECK(end[1] == Approx(-0.5 + (1 - decay) * -2.5).epsilon(1e-6));
}

TEST_CASE("lookahead does nothing before its first K steps, nor when off", "[lookahead]") {
  std::vector<int64_t> acted;
  const std::vector<float> end = run(4, &acted);  // T = 4 < K: no EMA ever started
  CHECK(acted.empty());
  CHECK(end == std::vector<float>{4.f, 0.f});
  std::vector<float> state = {1.f}, ema = {7.f};
  CHECK_FALSE(lookahead_update(state.data(), ema.data(), 1, 10, 10, 0));
  CHECK(state[0] == 1.f);
}
