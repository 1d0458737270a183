// The reference layers: plain C++, double precision, one thread, batch-major NCHW. They exist
// so the oneDNN engine has something independent to be checked against, so they are written
// for obviousness, not speed.
//
// Conventions (llm.c's): each layer is a pair x_forward / x_backward; arguments are outputs
// first, then inputs, then sizes. Forward saves what backward needs (pooling argmax, LRN
// denominators). Backward ACCUMULATES (+=) into every gradient it writes, so callers zero the
// buffers first; a null dinput skips the input gradient (the first layer does not need it).
#pragma once
#include <cstdint>

namespace ts {
namespace ref {

// Output size of a window sliding over `in` cells padded by pad_begin / pad_end.
int window_out_size(int in, int kernel, int stride, int pad_begin, int pad_end);

// conv: in [N,C,H,W] (x) weight [OC,C,K,K] + bias [OC] -> out [N,OC,OH,OW]
// Cross-correlation (no kernel flip), like PyTorch and oneDNN; zero padding.
void conv2d_forward(double* out, const double* in, const double* weight, const double* bias,
                    int N, int C, int H, int W, int OC, int K, int stride, int pad_begin,
                    int pad_end);
// dout [N,OC,OH,OW] -> dinput [N,C,H,W] (nullable), dweight [OC,C,K,K], dbias [OC]
void conv2d_backward(double* dinput, double* dweight, double* dbias, const double* dout,
                     const double* in, const double* weight, int N, int C, int H, int W, int OC,
                     int K, int stride, int pad_begin, int pad_end);

// relu: in [count] -> out [count]; may run in place (out == in)
void relu_forward(double* out, const double* in, int64_t count);
// dout [count], out [count] (the forward's output: the mask is out > 0) -> dinput [count]
void relu_backward(double* dinput, const double* dout, const double* out, int64_t count);

// maxpool: in [N,C,H,W] -> out [N,C,OH,OW], argmax [N,C,OH,OW] (absolute index into in).
// Padded cells never win: the max is over the window's cells inside the input. Ties go to
// the first maximum in the window's row-major scan order.
void maxpool_forward(double* out, int64_t* argmax, const double* in, int N, int C, int H, int W,
                     int K, int stride, int pad_begin, int pad_end);
// dout [N,C,OH,OW], argmax [N,C,OH,OW] -> dinput [N,C,H,W]
void maxpool_backward(double* dinput, const double* dout, const int64_t* argmax, int N, int C,
                      int OH, int OW);

// global average pool: in [N,C,H,W] -> out [N,C]
void global_avgpool_forward(double* out, const double* in, int N, int C, int H, int W);
// dout [N,C] -> dinput [N,C,H,W]
void global_avgpool_backward(double* dinput, const double* dout, int N, int C, int H, int W);

// LRN across channels, oneDNN's convention, r = (size - 1) / 2:
//   s_c = k + alpha / size * sum_{j = max(0, c-r)}^{min(C-1, c+r)} in_j^2,  out_c = in_c * s_c^-beta
// in [N,C,H,W] -> out [N,C,H,W], denom [N,C,H,W] (s, kept for backward)
void lrn_forward(double* out, double* denom, const double* in, int N, int C, int H, int W,
                 int size, double alpha, double beta, double k);
// Since j is in c's window exactly when c is in j's:
//   dinput_j = dout_j s_j^-beta - (2 alpha beta / size) in_j sum_{c in window(j)} dout_c in_c s_c^(-beta-1)
// dout, in, denom [N,C,H,W] -> dinput [N,C,H,W]
void lrn_backward(double* dinput, const double* dout, const double* in, const double* denom,
                  int N, int C, int H, int W, int size, double alpha, double beta);

// dense: in [N,I] (x) weight [O,I]^T + bias [O] -> out [N,O]
void dense_forward(double* out, const double* in, const double* weight, const double* bias, int N,
                   int I, int O);
// dout [N,O] -> dinput [N,I] (nullable), dweight [O,I], dbias [O]
void dense_backward(double* dinput, double* dweight, double* dbias, const double* dout,
                    const double* in, const double* weight, int N, int I, int O);

// softmax cross-entropy: logits [N,K], labels [N] -> losses [N] (one per sample, not averaged),
// probs [N,K]. labels must lie in [0, K). With label smoothing s the target is
// (1 - s) onehot + s / K: loss = -sum_k target_k log p_k (PyTorch's).
void softmax_cross_entropy_forward(double* losses, double* probs, const double* logits,
                                   const int32_t* labels, int N, int K, double smoothing = 0);
// Gradient of loss_scale * sum(losses): probs [N,K], labels [N] -> dlogits [N,K]
void softmax_cross_entropy_backward(double* dlogits, const double* probs, const int32_t* labels,
                                    int N, int K, double loss_scale, double smoothing = 0);

// Batch norm in training mode over groups of G consecutive samples (network.h), scale 1:
//   out = (in - mean_g) / sqrt(var_g + eps) + shift, mean_g / var_g (biased) over the group's
//   samples and H x W, per channel. in [N,C,HW] -> out, xhat [N,C,HW], group_mean and
//   group_var [N/G, C]. N must be a multiple of G.
void batchnorm_train_forward(double* out, double* xhat, double* group_mean, double* group_var,
                             const double* in, const double* shift, int N, int C, int HW, int G,
                             double eps);
// Through the group statistics: with m = G HW, per group and channel,
//   dinput = (dout - mean(dout) - xhat mean(dout xhat)) / sqrt(var + eps); dshift = sum dout.
void batchnorm_train_backward(double* dinput, double* dshift, const double* dout, const double* xhat,
                              const double* group_var, int N, int C, int HW, int G, double eps);
// Evaluation: out = (in - running_mean) / sqrt(running_var + eps) + shift.
void batchnorm_eval_forward(double* out, const double* in, const double* shift,
                            const double* running_mean, const double* running_var, int N, int C,
                            int HW, double eps);

// GELU, exact: out = in Phi(in); dinput = dout (Phi(in) + in phi(in)).
void gelu_forward(double* out, const double* in, int64_t count);
void gelu_backward(double* dinput, const double* dout, const double* in, int64_t count);

}  // namespace ref
}  // namespace ts
