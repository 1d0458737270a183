#include "reference/reference_layers.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ts {
namespace ref {

int window_out_size(int in, int kernel, int stride, int pad_begin, int pad_end) {
  return (in + pad_begin + pad_end - kernel) / stride + 1;
}

// ---------------------------------------------------------------------------------------------
// conv: in [N,C,H,W] (x) weight [OC,C,K,K] + bias [OC] -> out [N,OC,OH,OW]

void conv2d_forward(double* out, const double* in, const double* weight, const double* bias,
                    int N, int C, int H, int W, int OC, int K, int stride, int pad_begin,
                    int pad_end) {
  const int OH = window_out_size(H, K, stride, pad_begin, pad_end);
  const int OW = window_out_size(W, K, stride, pad_begin, pad_end);
  for (int n = 0; n < N; ++n)
    for (int oc = 0; oc < OC; ++oc)
      for (int oy = 0; oy < OH; ++oy)
        for (int ox = 0; ox < OW; ++ox) {
          double sum = bias[oc];
          for (int c = 0; c < C; ++c)
            for (int ky = 0; ky < K; ++ky) {
              const int iy = oy * stride - pad_begin + ky;
              if (iy < 0 || iy >= H) continue;  // zero padding
              for (int kx = 0; kx < K; ++kx) {
                const int ix = ox * stride - pad_begin + kx;
                if (ix < 0 || ix >= W) continue;
                sum += weight[((int64_t(oc) * C + c) * K + ky) * K + kx] *
                       in[((int64_t(n) * C + c) * H + iy) * W + ix];
              }
            }
          out[((int64_t(n) * OC + oc) * OH + oy) * OW + ox] = sum;
        }
}

void conv2d_backward(double* dinput, double* dweight, double* dbias, const double* dout,
                     const double* in, const double* weight, int N, int C, int H, int W, int OC,
                     int K, int stride, int pad_begin, int pad_end) {
  const int OH = window_out_size(H, K, stride, pad_begin, pad_end);
  const int OW = window_out_size(W, K, stride, pad_begin, pad_end);
  for (int n = 0; n < N; ++n)
    for (int oc = 0; oc < OC; ++oc)
      for (int oy = 0; oy < OH; ++oy)
        for (int ox = 0; ox < OW; ++ox) {
          const double d = dout[((int64_t(n) * OC + oc) * OH + oy) * OW + ox];
          dbias[oc] += d;
          for (int c = 0; c < C; ++c)
            for (int ky = 0; ky < K; ++ky) {
              const int iy = oy * stride - pad_begin + ky;
              if (iy < 0 || iy >= H) continue;
              for (int kx = 0; kx < K; ++kx) {
                const int ix = ox * stride - pad_begin + kx;
                if (ix < 0 || ix >= W) continue;
                const int64_t wi = ((int64_t(oc) * C + c) * K + ky) * K + kx;
                const int64_t ii = ((int64_t(n) * C + c) * H + iy) * W + ix;
                dweight[wi] += d * in[ii];
                if (dinput) dinput[ii] += d * weight[wi];
              }
            }
        }
}

// ---------------------------------------------------------------------------------------------
// relu: in [count] -> out [count]

void relu_forward(double* out, const double* in, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = in[i] > 0 ? in[i] : 0.0;
}

void relu_backward(double* dinput, const double* dout, const double* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    if (out[i] > 0) dinput[i] += dout[i];
}

// ---------------------------------------------------------------------------------------------
// maxpool: in [N,C,H,W] -> out [N,C,OH,OW], argmax [N,C,OH,OW]

void maxpool_forward(double* out, int64_t* argmax, const double* in, int N, int C, int H, int W,
                     int K, int stride, int pad_begin, int pad_end) {
  const int OH = window_out_size(H, K, stride, pad_begin, pad_end);
  const int OW = window_out_size(W, K, stride, pad_begin, pad_end);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const int64_t plane = (int64_t(n) * C + c) * H * W;
      for (int oy = 0; oy < OH; ++oy)
        for (int ox = 0; ox < OW; ++ox) {
          double best = -std::numeric_limits<double>::infinity();
          int64_t best_at = -1;
          for (int ky = 0; ky < K; ++ky) {
            const int iy = oy * stride - pad_begin + ky;
            if (iy < 0 || iy >= H) continue;  // padding is not a candidate
            for (int kx = 0; kx < K; ++kx) {
              const int ix = ox * stride - pad_begin + kx;
              if (ix < 0 || ix >= W) continue;
              const int64_t at = plane + int64_t(iy) * W + ix;
              if (best_at < 0 || in[at] > best) {  // strict: the first maximum wins ties
                best = in[at];
                best_at = at;
              }
            }
          }
          const int64_t o = ((int64_t(n) * C + c) * OH + oy) * OW + ox;
          out[o] = best;
          argmax[o] = best_at;
        }
    }
}

void maxpool_backward(double* dinput, const double* dout, const int64_t* argmax, int N, int C,
                      int OH, int OW) {
  const int64_t count = int64_t(N) * C * OH * OW;
  for (int64_t o = 0; o < count; ++o) dinput[argmax[o]] += dout[o];
}

// ---------------------------------------------------------------------------------------------
// global average pool: in [N,C,H,W] -> out [N,C]

void global_avgpool_forward(double* out, const double* in, int N, int C, int H, int W) {
  const int64_t hw = int64_t(H) * W;
  for (int64_t p = 0; p < int64_t(N) * C; ++p) {
    double sum = 0;
    for (int64_t i = 0; i < hw; ++i) sum += in[p * hw + i];
    out[p] = sum / double(hw);
  }
}

void global_avgpool_backward(double* dinput, const double* dout, int N, int C, int H, int W) {
  const int64_t hw = int64_t(H) * W;
  for (int64_t p = 0; p < int64_t(N) * C; ++p)
    for (int64_t i = 0; i < hw; ++i) dinput[p * hw + i] += dout[p] / double(hw);
}

// ---------------------------------------------------------------------------------------------
// LRN across channels: in [N,C,H,W] -> out [N,C,H,W], denom [N,C,H,W]

void lrn_forward(double* out, double* denom, const double* in, int N, int C, int H, int W,
                 int size, double alpha, double beta, double k) {
  const int r = (size - 1) / 2;
  const int64_t hw = int64_t(H) * W;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int64_t p = 0; p < hw; ++p) {
        double sum_sq = 0;
        for (int j = std::max(0, c - r); j <= std::min(C - 1, c + r); ++j) {
          const double v = in[(int64_t(n) * C + j) * hw + p];
          sum_sq += v * v;
        }
        const int64_t i = (int64_t(n) * C + c) * hw + p;
        denom[i] = k + alpha / size * sum_sq;
        out[i] = in[i] * std::pow(denom[i], -beta);
      }
}

void lrn_backward(double* dinput, const double* dout, const double* in, const double* denom,
                  int N, int C, int H, int W, int size, double alpha, double beta) {
  const int r = (size - 1) / 2;
  const int64_t hw = int64_t(H) * W;
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < C; ++j)
      for (int64_t p = 0; p < hw; ++p) {
        double cross = 0;  // sum over the channels c whose window holds j
        for (int c = std::max(0, j - r); c <= std::min(C - 1, j + r); ++c) {
          const int64_t i = (int64_t(n) * C + c) * hw + p;
          cross += dout[i] * in[i] * std::pow(denom[i], -beta - 1);
        }
        const int64_t i = (int64_t(n) * C + j) * hw + p;
        dinput[i] += dout[i] * std::pow(denom[i], -beta) -
                     2.0 * alpha * beta / size * in[i] * cross;
      }
}

// ---------------------------------------------------------------------------------------------
// dense: in [N,I] (x) weight [O,I]^T + bias [O] -> out [N,O]

void dense_forward(double* out, const double* in, const double* weight, const double* bias, int N,
                   int I, int O) {
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      double sum = bias[o];
      for (int i = 0; i < I; ++i) sum += weight[int64_t(o) * I + i] * in[int64_t(n) * I + i];
      out[int64_t(n) * O + o] = sum;
    }
}

void dense_backward(double* dinput, double* dweight, double* dbias, const double* dout,
                    const double* in, const double* weight, int N, int I, int O) {
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      const double d = dout[int64_t(n) * O + o];
      dbias[o] += d;
      for (int i = 0; i < I; ++i) {
        dweight[int64_t(o) * I + i] += d * in[int64_t(n) * I + i];
        if (dinput) dinput[int64_t(n) * I + i] += d * weight[int64_t(o) * I + i];
      }
    }
}

// ---------------------------------------------------------------------------------------------
// softmax cross-entropy: logits [N,K], labels [N] -> losses [N], probs [N,K]

void softmax_cross_entropy_forward(double* losses, double* probs, const double* logits,
                                   const int32_t* labels, int N, int K, double smoothing) {
  for (int n = 0; n < N; ++n) {
    const double* z = logits + int64_t(n) * K;
    const double zmax = *std::max_element(z, z + K);  // shift so exp cannot overflow
    double sum = 0;
    for (int k = 0; k < K; ++k) sum += std::exp(z[k] - zmax);
    const double log_sum_exp = zmax + std::log(sum);
    for (int k = 0; k < K; ++k) probs[int64_t(n) * K + k] = std::exp(z[k] - log_sum_exp);
    double loss = 0;
    for (int k = 0; k < K; ++k) {
      const double target = (k == labels[n] ? 1.0 - smoothing : 0.0) + smoothing / K;
      loss += target * (log_sum_exp - z[k]);
    }
    losses[n] = loss;
  }
}

void softmax_cross_entropy_backward(double* dlogits, const double* probs, const int32_t* labels,
                                    int N, int K, double loss_scale, double smoothing) {
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) {
      const double target = (k == labels[n] ? 1.0 - smoothing : 0.0) + smoothing / K;
      dlogits[int64_t(n) * K + k] += loss_scale * (probs[int64_t(n) * K + k] - target);
    }
}

void batchnorm_train_forward(double* out, double* xhat, double* group_mean, double* group_var,
                             const double* in, const double* shift, int N, int C, int HW, int G,
                             double eps) {
  const double m = double(G) * HW;
  for (int g = 0; g < N / G; ++g)
    for (int c = 0; c < C; ++c) {
      double sum = 0;
      for (int n = g * G; n < (g + 1) * G; ++n)
        for (int i = 0; i < HW; ++i) sum += in[(int64_t(n) * C + c) * HW + i];
      const double mean = sum / m;
      double ss = 0;
      for (int n = g * G; n < (g + 1) * G; ++n)
        for (int i = 0; i < HW; ++i) {
          const double d = in[(int64_t(n) * C + c) * HW + i] - mean;
          ss += d * d;
        }
      const double var = ss / m;
      group_mean[g * C + c] = mean;
      group_var[g * C + c] = var;
      const double rstd = 1.0 / std::sqrt(var + eps);
      for (int n = g * G; n < (g + 1) * G; ++n)
        for (int i = 0; i < HW; ++i) {
          const int64_t at = (int64_t(n) * C + c) * HW + i;
          xhat[at] = (in[at] - mean) * rstd;
          out[at] = xhat[at] + shift[c];
        }
    }
}

void batchnorm_train_backward(double* dinput, double* dshift, const double* dout, const double* xhat,
                              const double* group_var, int N, int C, int HW, int G, double eps) {
  const double m = double(G) * HW;
  for (int g = 0; g < N / G; ++g)
    for (int c = 0; c < C; ++c) {
      double sd = 0, sdx = 0;
      for (int n = g * G; n < (g + 1) * G; ++n)
        for (int i = 0; i < HW; ++i) {
          const int64_t at = (int64_t(n) * C + c) * HW + i;
          sd += dout[at];
          sdx += dout[at] * xhat[at];
        }
      dshift[c] += sd;
      if (!dinput) continue;
      const double rstd = 1.0 / std::sqrt(group_var[g * C + c] + eps);
      for (int n = g * G; n < (g + 1) * G; ++n)
        for (int i = 0; i < HW; ++i) {
          const int64_t at = (int64_t(n) * C + c) * HW + i;
          dinput[at] += (dout[at] - sd / m - xhat[at] * sdx / m) * rstd;
        }
    }
}

void batchnorm_eval_forward(double* out, const double* in, const double* shift,
                            const double* running_mean, const double* running_var, int N, int C,
                            int HW, double eps) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const double rstd = 1.0 / std::sqrt(running_var[c] + eps);
      for (int i = 0; i < HW; ++i) {
        const int64_t at = (int64_t(n) * C + c) * HW + i;
        out[at] = (in[at] - running_mean[c]) * rstd + shift[c];
      }
    }
}

void gelu_forward(double* out, const double* in, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = in[i] * 0.5 * (1.0 + std::erf(in[i] / std::sqrt(2.0)));
}

void gelu_backward(double* dinput, const double* dout, const double* in, int64_t count) {
  const double inv_sqrt_2pi = 1.0 / std::sqrt(2.0 * M_PI);
  for (int64_t i = 0; i < count; ++i) {
    const double x = in[i];
    const double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
    const double pdf = inv_sqrt_2pi * std::exp(-0.5 * x * x);
    dinput[i] += dout[i] * (cdf + x * pdf);
  }
}

}  // namespace ref
}  // namespace ts
