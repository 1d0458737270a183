// The gradient in buckets, sent while backward still runs (--bucket-kb; the way PyTorch DDP
// buckets): backward finishes the layers last to first, and the flat buffer holds them first
// to last (common/network.h), so the parameters finished by the time layer i's backward is
// done are exactly those from layer i's first one to the end. A bucket is a range of whole
// layers; bucket 0 is the end of the buffer (ready first). Worker and coordinator compute the
// same plan from the network and the bucket size the Welcome names.
#pragma once
#include <cstddef>
#include <vector>

#include "network.h"

namespace ts {

struct GradientBucket {
  size_t begin = 0, end = 0;  // floats of the flat buffer, [begin, end)
  size_t size() const { return end - begin; }
};

// Where layer i's parameters start in the flat buffer, or num_params for a layer with none.
size_t layer_param_begin(const NetworkSpec& net, size_t layer);

// From the end of the buffer towards its start, each bucket closed at the first layer
// boundary where it holds at least bucket_floats (the last one, at the start, may hold less).
// Covers [0, num_params) exactly, without gaps. bucket_floats 0: no buckets (empty plan).
std::vector<GradientBucket> gradient_buckets(const NetworkSpec& net, size_t bucket_floats);

}  // namespace ts
