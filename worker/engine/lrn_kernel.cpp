#include "lrn_kernel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

namespace ts {
namespace {

using tag = dnnl::memory::format_tag;

// s^-beta; tf_tutorial's beta = 0.75 is s^-1/2 * s^-1/4, two square roots instead of a pow.
inline float inv_pow(float s, float beta) {
  if (beta == 0.75f) {
    const float r = std::sqrt(s);
    return 1.f / (r * std::sqrt(r));
  }
  return std::exp(-beta * std::log(s));
}

}  // namespace

bool channel_layout_of(const dnnl::memory::desc& d, ChannelLayout* out) {
  const auto dims = d.dims();
  if (dims.size() != 4 || d.data_type() != dnnl::memory::data_type::f32) return false;
  const int64_t n = dims[0], c = dims[1], hw = dims[2] * dims[3];
  ChannelLayout l;
  l.channels = int(c);
  l.pixels = int(hw);
  l.channel_offset.resize(size_t(c));
  auto is = [&](tag t) { return d == dnnl::memory::desc(dims, dnnl::memory::data_type::f32, t); };
  if (is(tag::nchw)) {
    l.sample_stride = c * hw;
    l.pixel_stride = 1;
    for (int64_t i = 0; i < c; ++i) l.channel_offset[i] = i * hw;
  } else if (is(tag::nhwc)) {
    l.sample_stride = c * hw;
    l.pixel_stride = c;
    for (int64_t i = 0; i < c; ++i) l.channel_offset[i] = i;
  } else if (is(tag::nChw16c) || is(tag::nChw8c)) {
    const int64_t blk = is(tag::nChw16c) ? 16 : 8;
    const int64_t padded = (c + blk - 1) / blk * blk;
    l.sample_stride = padded * hw;
    l.pixel_stride = blk;
    for (int64_t i = 0; i < c; ++i) l.channel_offset[i] = (i / blk) * hw * blk + i % blk;
  } else {
    return false;
  }
  (void)n;
  *out = std::move(l);
  return true;
}

void lrn_forward_kernel(const ChannelLayout& L, int n, const LrnParams& p, const float* src,
                        float* dst, float* scale) {
  const int C = L.channels, half = p.size / 2;
  const double a = double(p.alpha) / p.size;
  const int64_t total = int64_t(n) * L.pixels;
#pragma omp parallel
  {
    std::vector<float> x(C);
    std::vector<double> prefix(C + 1);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < total; ++i) {
      const int64_t base = (i / L.pixels) * L.sample_stride + (i % L.pixels) * L.pixel_stride;
      prefix[0] = 0;
      for (int c = 0; c < C; ++c) {
        x[c] = src[base + L.channel_offset[c]];
        prefix[c + 1] = prefix[c] + double(x[c]) * x[c];
      }
      float* s = scale + i * C;
      for (int c = 0; c < C; ++c) {
        const int lo = std::max(c - half, 0), hi = std::min(c + half, C - 1);
        s[c] = float(p.k + a * (prefix[hi + 1] - prefix[lo]));
      }
      for (int c = 0; c < C; ++c) dst[base + L.channel_offset[c]] = x[c] * inv_pow(s[c], p.beta);
    }
  }
}

void lrn_backward_kernel(const ChannelLayout& L, int n, const LrnParams& p, const float* src,
                         const float* diff_dst, const float* scale, float* diff_src) {
  const int C = L.channels, half = p.size / 2;
  const float coef = 2.f * p.alpha * p.beta / float(p.size);
  const int64_t total = int64_t(n) * L.pixels;
#pragma omp parallel
  {
    std::vector<float> x(C), dy(C), pw(C);
    std::vector<double> prefix(C + 1);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < total; ++i) {
      const int64_t base = (i / L.pixels) * L.sample_stride + (i % L.pixels) * L.pixel_stride;
      const float* s = scale + i * C;
      prefix[0] = 0;
      for (int c = 0; c < C; ++c) {
        const int64_t off = base + L.channel_offset[c];
        x[c] = src[off];
        dy[c] = diff_dst[off];
        pw[c] = inv_pow(s[c], p.beta);
        // t_c = dy_c * x_c * s_c^(-beta-1); the window is symmetric, so sum over windows
        // containing j = sum over window(j).
        prefix[c + 1] = prefix[c] + double(dy[c]) * x[c] * pw[c] / s[c];
      }
      for (int c = 0; c < C; ++c) {
        const int lo = std::max(c - half, 0), hi = std::min(c + half, C - 1);
        const float t = float(prefix[hi + 1] - prefix[lo]);
        diff_src[base + L.channel_offset[c]] = dy[c] * pw[c] - coef * x[c] * t;
      }
    }
  }
}

}  // namespace ts
