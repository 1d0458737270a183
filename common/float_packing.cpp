#include "float_packing.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ts {

static_assert(sizeof(float) == 4, "float32 on the wire");

void pack_floats(const float* data, size_t n, std::string* out) {
  out->resize(n * sizeof(float));
  if (n) std::memcpy(&(*out)[0], data, n * sizeof(float));
}

std::string pack_floats(const float* data, size_t n) {
  std::string s;
  pack_floats(data, n, &s);
  return s;
}

size_t first_nonfinite(const char* bytes, size_t n) {
  // A float is NaN or infinite exactly when its exponent bits are all ones.
  auto nonfinite = [bytes](size_t i) {
    constexpr uint32_t kExponent = 0x7f800000u;
    uint32_t bits;
    std::memcpy(&bits, bytes + i * sizeof(float), sizeof bits);
    return uint32_t((bits & kExponent) == kExponent);
  };
  constexpr size_t kBlock = 256;
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t end = std::min(n, begin + kBlock);
    uint32_t any = 0;
    for (size_t i = begin; i < end; ++i) any |= nonfinite(i);
    if (!any) continue;
    for (size_t i = begin; i < end; ++i)
      if (nonfinite(i)) return i;
  }
  return n;
}

std::string unpack_floats(const std::string& bytes, size_t n, float* out, const char* what) {
  if (bytes.size() != n * sizeof(float))
    return std::string(what) + " has " + std::to_string(bytes.size()) + " bytes, expected " +
           std::to_string(n * sizeof(float)) + " (" + std::to_string(n) + " floats)";
  if (n) std::memcpy(out, bytes.data(), n * sizeof(float));
  const size_t bad = first_nonfinite(bytes.data(), n);
  if (bad < n)
    return std::string(what) + " holds a non-finite value (" + std::to_string(out[bad]) +
           ") at position " + std::to_string(bad);
  return "";
}

void add_packed_floats(const std::string& bytes, float* acc, size_t n) {
  const char* p = bytes.data();
  for (size_t i = 0; i < n; ++i) {
    float x;
    std::memcpy(&x, p + i * sizeof(float), sizeof(float));
    acc[i] += x;
  }
}

}  // namespace ts
