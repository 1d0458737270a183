// The wire's float buffers (common/float_packing.h): packing, unpacking with reasons, the
// blockwise finiteness scan and summing straight from the bytes.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "float_packing.h"

TEST_CASE("float buffers survive the wire and bad ones are named", "[float_packing]") {
  const float v[3] = {1.5f, -2.f, 3e-8f};
  const std::string bytes = ts::pack_floats(v, 3);
  REQUIRE(bytes.size() == 12);
  float back[3] = {};
  CHECK(ts::unpack_floats(bytes, 3, back, "gradient").empty());
  CHECK(back[0] == 1.5f);
  CHECK(back[2] == 3e-8f);
  CHECK_THAT(ts::unpack_floats(bytes, 4, back, "gradient"),
             Catch::Contains("gradient has 12 bytes, expected 16"));
  const float bad[2] = {0.f, std::numeric_limits<float>::infinity()};
  CHECK_THAT(ts::unpack_floats(ts::pack_floats(bad, 2), 2, back, "parameters"),
             Catch::Contains("non-finite value") && Catch::Contains("position 1"));
}

TEST_CASE("the blockwise finiteness scan finds the first NaN or infinity anywhere", "[float_packing]") {
  // Sizes around the 256-float block, values at the edges of finite, bytes not 4-aligned.
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  for (size_t n : {size_t(1), size_t(255), size_t(256), size_t(257), size_t(1000)}) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i)
      v[i] = i % 3 == 0 ? std::numeric_limits<float>::max()
                        : (i % 3 == 1 ? -std::numeric_limits<float>::denorm_min() : 0.f);
    std::string bytes = " " + ts::pack_floats(v.data(), n);
    CHECK(ts::first_nonfinite(bytes.data() + 1, n) == n);
    for (size_t at : {size_t(0), n / 2, n - 1}) {
      for (float special : specials) {
        std::vector<float> w = v;
        w[at] = special;
        if (at + 1 < n) w[n - 1] = special;  // a later one must not hide the first
        bytes = " " + ts::pack_floats(w.data(), n);
        CHECK(ts::first_nonfinite(bytes.data() + 1, n) == at);
      }
    }
  }
  CHECK(ts::first_nonfinite(nullptr, 0) == 0);
}

TEST_CASE("packed floats are summed straight from the wire bytes", "[float_packing]") {
  const float a[4] = {1.f, -2.f, 0.5f, 3e-8f};
  const std::string bytes = " " + ts::pack_floats(a, 4);
  float acc[4] = {1.f, 1.f, 1.f, 1.f};
  ts::add_packed_floats(bytes.substr(1), acc, 4);
  CHECK(acc[0] == 2.f);
  CHECK(acc[1] == -1.f);
  CHECK(acc[2] == 1.5f);
  CHECK(acc[3] == 1.f + 3e-8f);
}
