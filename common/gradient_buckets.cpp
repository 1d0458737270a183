#include "gradient_buckets.h"

#include <stdexcept>

namespace ts {

size_t layer_param_begin(const NetworkSpec& net, size_t layer) {
  const LayerSpec& l = net.layers.at(layer);
  const int first = l.weight_param >= 0 ? l.weight_param : l.bias_param;
  return first >= 0 ? net.params[size_t(first)].offset : net.num_params;
}

std::vector<GradientBucket> gradient_buckets(const NetworkSpec& net, size_t bucket_floats) {
  std::vector<GradientBucket> out;
  if (bucket_floats == 0 || net.num_params == 0) return out;
  size_t end = net.num_params;
  for (size_t i = net.layers.size(); i-- > 0;) {
    const size_t begin = layer_param_begin(net, i);
    if (begin >= end) continue;  // no parameters (or none below the bucket in the making)
    if (end - begin >= bucket_floats || begin == 0) {
      out.push_back({begin, end});
      end = begin;
    }
  }
  if (end > 0) out.push_back({0, end});  // parameters before the first layer's (none today)
  // The plan's promise, checked: contiguous from the end down to 0.
  size_t expect = net.num_params;
  for (const GradientBucket& b : out) {
    if (b.end != expect || b.begin >= b.end) throw std::logic_error("gradient_buckets: a gap in the plan");
    expect = b.begin;
  }
  if (expect != 0) throw std::logic_error("gradient_buckets: the plan does not reach the start");
  return out;
}

}  // namespace ts
