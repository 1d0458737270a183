#include "reference/reference_model.h"

#include <stdexcept>
#include <string>

#include "reference/reference_layers.h"

namespace ts {
namespace {

// What the forward pass keeps for backward: every activation (acts[0] is the input, acts[l+1]
// the output of layer l after its fused ReLU), pooling argmaxes and LRN denominators.
struct ForwardState {
  std::vector<std::vector<double>> acts;
  std::vector<std::vector<int64_t>> argmax;  // per layer, maxpool only
  std::vector<std::vector<double>> denom;    // per layer, LRN only
  std::vector<std::vector<double>> xhat;     // per layer, batch norm (training) only
  std::vector<std::vector<double>> gmean, gvar;  // per layer, batch norm: [groups, C]
  std::vector<double> probs;                 // softmax of the logits [n, num_classes]
};

void check_inputs(const NetworkSpec& net, size_t params, size_t images,
                  const std::vector<int32_t>& labels, int n) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("reference step on network '" + net.name + "': " + why);
  };
  if (n <= 0) fail("batch size must be positive, got " + std::to_string(n));
  for (const LayerSpec& l : net.layers)
    if (l.kind == LayerKind::kRelu || l.kind == LayerKind::kAvgPool || l.kind == LayerKind::kAdd ||
        !l.inputs.empty() || l.bn_scale)
      fail("layer '" + l.name + "': the reference implementation checks the built-in chains of layers "
           "only (imported graphs are checked against PyTorch's values)");
  if (params != net.num_params)
    fail("expected " + std::to_string(net.num_params) + " parameters, got " +
         std::to_string(params));
  if (images != size_t(n) * size_t(net.input.size()))
    fail("expected " + std::to_string(size_t(n) * size_t(net.input.size())) +
         " image values for a batch of " + std::to_string(n) + ", got " + std::to_string(images));
  if (labels.size() != size_t(n))
    fail("expected " + std::to_string(n) + " labels, got " + std::to_string(labels.size()));
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= net.num_classes)
      fail("label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
           " is outside [0, " + std::to_string(net.num_classes) + ")");
}

ForwardState run_forward(const NetworkSpec& net, const std::vector<double>& params,
                         const std::vector<double>& images, const std::vector<int32_t>& labels,
                         int n, ReferenceResult& result, bool training, double smoothing) {
  check_inputs(net, params.size(), images.size(), labels, n);
  const size_t L = net.layers.size();
  ForwardState st;
  st.acts.resize(L + 1);
  st.argmax.resize(L);
  st.denom.resize(L);
  st.xhat.resize(L);
  st.gmean.resize(L);
  st.gvar.resize(L);
  st.acts[0] = images;
  for (size_t li = 0; li < L; ++li) {
    const LayerSpec& l = net.layers[li];
    const double* in = st.acts[li].data();
    std::vector<double>& out = st.acts[li + 1];
    out.assign(size_t(n) * size_t(l.out.size()), 0.0);
    const double* w = l.weight_param >= 0 ? params.data() + net.params[l.weight_param].offset
                                          : nullptr;
    const double* b = l.bias_param >= 0 ? params.data() + net.params[l.bias_param].offset
                                        : nullptr;
    const std::vector<double> no_bias(size_t(l.out.c), 0.0);  // a layer without a bias
    if (!b && (l.kind == LayerKind::kConv || l.kind == LayerKind::kDense)) b = no_bias.data();
    switch (l.kind) {
      case LayerKind::kConv:
        ref::conv2d_forward(out.data(), in, w, b, n, l.in.c, l.in.h, l.in.w, l.out.c, l.kernel,
                            l.stride, l.pad_begin, l.pad_end);
        break;
      case LayerKind::kMaxPool:
        st.argmax[li].resize(out.size());
        ref::maxpool_forward(out.data(), st.argmax[li].data(), in, n, l.in.c, l.in.h, l.in.w,
                             l.kernel, l.stride, l.pad_begin, l.pad_end);
        break;
      case LayerKind::kGlobalAvgPool:
        ref::global_avgpool_forward(out.data(), in, n, l.in.c, l.in.h, l.in.w);
        break;
      case LayerKind::kLrn:
        st.denom[li].resize(out.size());
        ref::lrn_forward(out.data(), st.denom[li].data(), in, n, l.in.c, l.in.h, l.in.w,
                         l.lrn_size, l.lrn_alpha, l.lrn_beta, l.lrn_k);
        break;
      case LayerKind::kDense:  // a [C,H,W] input is already flat in C,H,W order
        ref::dense_forward(out.data(), in, w, b, n, int(l.in.size()), l.out_channels);
        break;
      case LayerKind::kBatchNorm: {
        const int HW = l.in.h * l.in.w;
        if (training) {
          if (l.bn_group < 1 || n % l.bn_group != 0)
            throw std::invalid_argument("reference step on network '" + net.name + "': a batch of " +
                                        std::to_string(n) + " is not whole groups of " +
                                        std::to_string(l.bn_group));
          st.xhat[li].resize(out.size());
          st.gmean[li].resize(size_t(n / l.bn_group) * l.in.c);
          st.gvar[li].resize(st.gmean[li].size());
          ref::batchnorm_train_forward(out.data(), st.xhat[li].data(), st.gmean[li].data(),
                                       st.gvar[li].data(), in, b, n, l.in.c, HW, l.bn_group, l.bn_eps);
        } else {
          const double* rm = params.data() + net.params[size_t(l.bias_param) + 1].offset;
          const double* rv = params.data() + net.params[size_t(l.bias_param) + 2].offset;
          ref::batchnorm_eval_forward(out.data(), in, b, rm, rv, n, l.in.c, HW, l.bn_eps);
        }
        break;
      }
      case LayerKind::kGelu:
        ref::gelu_forward(out.data(), in, int64_t(out.size()));
        break;
      case LayerKind::kScale:
        for (size_t i = 0; i < out.size(); ++i) out[i] = in[i] * double(l.scale);
        break;
      case LayerKind::kRelu:
      case LayerKind::kAvgPool:
      case LayerKind::kAdd:
        throw std::logic_error("check_inputs refuses this layer");
    }
    if (l.relu) ref::relu_forward(out.data(), out.data(), int64_t(out.size()));
  }

  const int K = net.num_classes;
  result.logits = st.acts[L];
  result.losses.assign(size_t(n), 0.0);
  st.probs.assign(size_t(n) * K, 0.0);
  ref::softmax_cross_entropy_forward(result.losses.data(), st.probs.data(), result.logits.data(),
                                     labels.data(), n, K, smoothing);
  result.loss_sum = 0;
  result.correct = 0;
  for (int i = 0; i < n; ++i) {
    result.loss_sum += result.losses[i];
    const double* z = result.logits.data() + size_t(i) * K;
    int best = 0;
    for (int k = 1; k < K; ++k)
      if (z[k] > z[best]) best = k;
    if (best == labels[i]) ++result.correct;
  }
  return st;
}

}  // namespace

ReferenceResult reference_forward(const NetworkSpec& net, const std::vector<double>& params_flat,
                                  const std::vector<double>& images,
                                  const std::vector<int32_t>& labels, int n) {
  ReferenceResult result;
  run_forward(net, params_flat, images, labels, n, result, /*training=*/false, 0.0);
  return result;
}

ReferenceResult reference_train_step(const NetworkSpec& net, const std::vector<double>& params_flat,
                                     const std::vector<double>& images,
                                     const std::vector<int32_t>& labels, int n,
                                     double loss_scale, double label_smoothing) {
  ReferenceResult result;
  const ForwardState st =
      run_forward(net, params_flat, images, labels, n, result, /*training=*/true, label_smoothing);
  const size_t L = net.layers.size();
  result.grad.assign(net.num_params, 0.0);

  // dact holds d(loss)/d(acts[li + 1]) while layer li runs backward.
  std::vector<double> dact(result.logits.size(), 0.0);
  ref::softmax_cross_entropy_backward(dact.data(), st.probs.data(), labels.data(), n,
                                      net.num_classes, loss_scale, label_smoothing);
  for (size_t li = L; li-- > 0;) {
    const LayerSpec& l = net.layers[li];
    const std::vector<double>& out = st.acts[li + 1];
    if (l.relu) {  // through the fused ReLU first: its output is this layer's output
      std::vector<double> dpre(dact.size(), 0.0);
      ref::relu_backward(dpre.data(), dact.data(), out.data(), int64_t(out.size()));
      dact.swap(dpre);
    }
    const double* in = st.acts[li].data();
    const bool need_dinput = li > 0;  // nothing upstream of the input has parameters
    std::vector<double> din(need_dinput ? st.acts[li].size() : 0, 0.0);
    double* dinput = need_dinput ? din.data() : nullptr;
    const double* w = l.weight_param >= 0
                          ? params_flat.data() + net.params[l.weight_param].offset
                          : nullptr;
    double* dw = l.weight_param >= 0 ? result.grad.data() + net.params[l.weight_param].offset
                                     : nullptr;
    double* db = l.bias_param >= 0 ? result.grad.data() + net.params[l.bias_param].offset
                                   : nullptr;
    // No bias: its gradient goes nowhere. A frozen weight: its gradient is 0 (network.h).
    std::vector<double> scratch_db(size_t(l.out.c), 0.0), scratch_dw;
    if (!db && (l.kind == LayerKind::kConv || l.kind == LayerKind::kDense)) db = scratch_db.data();
    if (l.frozen && dw) {
      scratch_dw.assign(net.params[size_t(l.weight_param)].size, 0.0);
      dw = scratch_dw.data();
    }
    switch (l.kind) {
      case LayerKind::kConv:
        ref::conv2d_backward(dinput, dw, db, dact.data(), in, w, n, l.in.c, l.in.h, l.in.w,
                             l.out.c, l.kernel, l.stride, l.pad_begin, l.pad_end);
        break;
      case LayerKind::kMaxPool:
        if (dinput)
          ref::maxpool_backward(dinput, dact.data(), st.argmax[li].data(), n, l.out.c, l.out.h,
                                l.out.w);
        break;
      case LayerKind::kGlobalAvgPool:
        if (dinput) ref::global_avgpool_backward(dinput, dact.data(), n, l.in.c, l.in.h, l.in.w);
        break;
      case LayerKind::kLrn:
        if (dinput)
          ref::lrn_backward(dinput, dact.data(), in, st.denom[li].data(), n, l.in.c, l.in.h,
                            l.in.w, l.lrn_size, l.lrn_alpha, l.lrn_beta);
        break;
      case LayerKind::kDense:
        ref::dense_backward(dinput, dw, db, dact.data(), in, w, n, int(l.in.size()),
                            l.out_channels);
        break;
      case LayerKind::kBatchNorm: {
        const int HW = l.in.h * l.in.w;
        ref::batchnorm_train_backward(dinput, db, dact.data(), st.xhat[li].data(), st.gvar[li].data(),
                                      n, l.in.c, HW, l.bn_group, l.bn_eps);
        // The running-statistic slots: sums over the groups of the group means and unbiased
        // variances (network.h), not scaled by the loss scale.
        double* gm = result.grad.data() + net.params[size_t(l.bias_param) + 1].offset;
        double* gv = result.grad.data() + net.params[size_t(l.bias_param) + 2].offset;
        const double m = double(l.bn_group) * HW;
        for (int g = 0; g < n / l.bn_group; ++g)
          for (int c = 0; c < l.in.c; ++c) {
            gm[c] += st.gmean[li][size_t(g) * l.in.c + c];
            gv[c] += st.gvar[li][size_t(g) * l.in.c + c] * m / (m - 1);
          }
        break;
      }
      case LayerKind::kGelu:
        if (dinput) ref::gelu_backward(dinput, dact.data(), in, int64_t(din.size()));
        break;
      case LayerKind::kScale:
        if (dinput)
          for (size_t i = 0; i < din.size(); ++i) dinput[i] += dact[i] * double(l.scale);
        break;
      case LayerKind::kRelu:
      case LayerKind::kAvgPool:
      case LayerKind::kAdd:
        throw std::logic_error("check_inputs refuses this layer");
    }
    dact.swap(din);
  }
  return result;
}

ReferenceResult reference_train_step(const NetworkSpec& net, const std::vector<float>& params_flat,
                                     const std::vector<float>& images,
                                     const std::vector<int32_t>& labels, int n,
                                     double loss_scale, double label_smoothing) {
  return reference_train_step(net, std::vector<double>(params_flat.begin(), params_flat.end()),
                              std::vector<double>(images.begin(), images.end()), labels, n,
                              loss_scale, label_smoothing);
}

}  // namespace ts
