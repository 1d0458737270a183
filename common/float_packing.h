// How float buffers travel on the wire (proto/trainer.proto's bytes fields): packed
// little-endian float32 (this project runs on little-endian hosts only), unpacked and summed
// straight from the bytes.
#pragma once
#include <cstddef>
#include <string>

namespace ts {

std::string pack_floats(const float* data, size_t n);
void pack_floats(const float* data, size_t n, std::string* out);

// Unpacks exactly `n` floats into `out`. Returns an empty string on success, else one
// sentence saying what was wrong (size, or the first non-finite value and its position).
std::string unpack_floats(const std::string& bytes, size_t n, float* out, const char* what);

// The position of the first non-finite float among the n packed in `bytes` (no alignment
// assumed), or n when all are finite. Scans in blocks without branches, so it vectorizes:
// the coordinator checks every gradient on its way in.
size_t first_nonfinite(const char* bytes, size_t n);

// acc[i] += the i-th float packed in `bytes`, which holds exactly n (the caller checked),
// straight from the bytes: no copy, no alignment assumed.
void add_packed_floats(const std::string& bytes, float* acc, size_t n);

}  // namespace ts
