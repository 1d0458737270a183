// Convolution (+ bias) with optional fused ReLU.
// conv {N,C,H,W} (x) {O,C,K,K} + {O} -> {N,O,H',W'}, stride s, padding (pb, pe). Without a
// bias (LayerSpec::bias false) the descriptors get an empty bias; a frozen weight gets a zero
// gradient (and, with a bias, only the bias gradient is of use).
#include <stdexcept>

#include "net_builder.h"

namespace ts {
namespace {

class ConvLayer : public Layer {
 public:
  ConvLayer(const NetworkSpec& net, const LayerSpec& spec)
      : spec_(spec), w_(net.params[size_t(spec.weight_param)]), has_bias_(spec.bias_param >= 0) {
    if (has_bias_) bias_ = net.params[size_t(spec.bias_param)];
  }

  memory build_forward(NetBuilder& b, const memory& src) override {
    const auto& s = spec_;
    const memory::dims src_dims = {b.n, s.in.c, s.in.h, s.in.w};
    const memory::dims w_dims = {s.out.c, s.in.c, s.kernel, s.kernel};
    const memory::dims dst_dims = {b.n, s.out.c, s.out.h, s.out.w};
    strides_ = {s.stride, s.stride};
    pad_l_ = {s.pad_begin, s.pad_begin};
    pad_r_ = {s.pad_end, s.pad_end};
    w_user_ = md(w_dims, tag::oihw);
    b_user_ = has_bias_ ? md({s.out.c}, tag::x) : memory::desc();

    // bf16 where the layer is big enough to gain: a convolution over 3 input channels (the
    // first, cheap) stays f32, as its input is.
    a_ = b.act == dt::bf16 && s.in.c >= 16 ? dt::bf16 : dt::f32;
    const dnnl::primitive_attr attr = fused_relu_attr(s.relu);
    // Winograd where oneDNN implements it for this shape (3x3, stride 1, channels in blocks of
    // 16), else direct; backward follows the forward's choice.
    alg_ = dnnl::algorithm::convolution_direct;
    const bool wino_shape = s.kernel == 3 && s.stride == 1 && s.in.c % 16 == 0 && s.out.c % 16 == 0;
    for (auto alg : {dnnl::algorithm::convolution_winograd, dnnl::algorithm::convolution_direct}) {
      if (alg == dnnl::algorithm::convolution_winograd && !(b.winograd && wino_shape)) continue;
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, alg, any_md(src_dims, a_),
                                        any_md(w_dims, a_), b_user_, any_md(dst_dims, a_), strides_,
                                        pad_l_, pad_r_);
      fwd_pd_ = dnnl::convolution_forward::primitive_desc(d, attr, b.eng, /*allow_empty=*/true);
      if (fwd_pd_) {
        alg_ = alg;
        break;
      }
    }
    if (!fwd_pd_) throw std::runtime_error(s.name + ": oneDNN has no convolution for this shape");

    src_ = b.convert(src, fwd_pd_.src_desc(), b.fwd, s.name + " src reorder");
    memory w = b.param_in(w_, w_user_, fwd_pd_.weights_desc(), s.name + " weight reorder");
    dst_ = memory(fwd_pd_.dst_desc(), b.eng);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst_}};
    if (has_bias_) args[DNNL_ARG_BIAS] = b.param_memory(bias_, b_user_);
    b.add(b.fwd, dnnl::convolution_forward(fwd_pd_), std::move(args), s.name + " fwd", fwd_pd_);
    weights_ = w;
    return dst_;
  }

  memory build_backward(NetBuilder& b, const memory& diff_dst_in, bool need_diff_src) override {
    const auto& s = spec_;
    memory diff_dst = s.relu && !relu_backward_done_downstream
                          ? relu_backward_in_place(b, dst_, diff_dst_in, s.name + " relu bwd")
                             : b.convert(diff_dst_in, dst_.get_desc(), b.bwd, s.name + " diff reorder");
    const memory::dims src_dims = {b.n, s.in.c, s.in.h, s.in.w};
    const memory::dims w_dims = {s.out.c, s.in.c, s.kernel, s.kernel};
    const memory::dims dst_dims = {b.n, s.out.c, s.out.h, s.out.w};

    // Weights gradient: reads the forward's input and the (ReLU-masked) output gradient.
    // Backward in the forward's algorithm where oneDNN has it, else direct.
    auto make_bw = [&](dnnl::algorithm alg) {
      // The weight gradient in f32 whatever the activations are.
      dnnl::convolution_backward_weights::desc dw(alg, any_md(src_dims, a_), any_md(w_dims), b_user_,
                                                  any_md(dst_dims, a_), strides_, pad_l_, pad_r_);
      return dnnl::convolution_backward_weights::primitive_desc(dw, b.eng, fwd_pd_, true);
    };
    if (s.frozen) b.zero_grad(w_, s.name + " frozen dW");
    if (!s.frozen || has_bias_) {
      auto bw_pd = make_bw(alg_);
      if (!bw_pd) bw_pd = make_bw(dnnl::algorithm::convolution_direct);
      memory bw_src = b.convert(src_, bw_pd.src_desc(), b.bwd, s.name + " bwd-w src reorder");
      memory bw_diff_dst = b.convert(diff_dst, bw_pd.diff_dst_desc(), b.bwd, s.name + " bwd-w diff reorder");
      // A frozen weight's gradient goes to scratch: the bias gradient comes with it.
      memory dweights = s.frozen ? memory(bw_pd.diff_weights_desc(), b.eng)
                                 : b.grad_out(w_, w_user_, bw_pd.diff_weights_desc(), s.name + " dW reorder");
      std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, bw_src}, {DNNL_ARG_DIFF_DST, bw_diff_dst},
                                              {DNNL_ARG_DIFF_WEIGHTS, dweights}};
      if (has_bias_)
        args[DNNL_ARG_DIFF_BIAS] = b.grad_out(bias_, b_user_, bw_pd.diff_bias_desc(), s.name + " db reorder");
      b.add(b.bwd, dnnl::convolution_backward_weights(bw_pd), std::move(args), s.name + " bwd weights", bw_pd);
      b.flush_grad_reorders();
    }
    if (!need_diff_src) return memory();

    auto make_bd = [&](dnnl::algorithm alg) {
      dnnl::convolution_backward_data::desc dd(alg, any_md(src_dims, a_), any_md(w_dims, a_),
                                               any_md(dst_dims, a_), strides_, pad_l_, pad_r_);
      return dnnl::convolution_backward_data::primitive_desc(dd, b.eng, fwd_pd_, true);
    };
    auto bd_pd = make_bd(alg_);
    if (!bd_pd) bd_pd = make_bd(dnnl::algorithm::convolution_direct);
    memory w = b.convert(weights_, bd_pd.weights_desc(), b.load, s.name + " bwd-d weight reorder");
    memory bd_diff_dst = b.convert(diff_dst, bd_pd.diff_dst_desc(), b.bwd, s.name + " bwd-d diff reorder");
    memory diff_src(bd_pd.diff_src_desc(), b.eng);
    b.add(b.bwd, dnnl::convolution_backward_data(bd_pd),
          {{DNNL_ARG_DIFF_DST, bd_diff_dst}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, diff_src}},
          s.name + " bwd data", bd_pd);
    return diff_src;
  }

 private:
  LayerSpec spec_;
  ParamSpec w_, bias_;
  bool has_bias_ = true;
  dt a_ = dt::f32;  // this layer's activation and weight type
  memory::dims strides_, pad_l_, pad_r_;
  memory::desc w_user_, b_user_;
  dnnl::algorithm alg_ = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::primitive_desc fwd_pd_;
  memory src_, dst_, weights_;
};

}  // namespace

std::unique_ptr<Layer> make_conv_layer(const NetworkSpec& net, const LayerSpec& spec) {
  return std::make_unique<ConvLayer>(net, spec);
}

// Shared by conv and dense: ReLU's derivative from the fused forward's output.
memory relu_backward_in_place(NetBuilder& b, const memory& dst, const memory& diff_dst,
                              const std::string& what) {
  memory diff = b.convert(diff_dst, dst.get_desc(), b.bwd, what + " diff reorder");
  const auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
  dnnl::eltwise_forward::desc fd(dnnl::prop_kind::forward_training, alg, dst.get_desc(), 0.f);
  dnnl::eltwise_forward::primitive_desc fpd(fd, b.eng);  // hint only, never executed
  dnnl::eltwise_backward::desc bd(alg, dst.get_desc(), dst.get_desc(), 0.f);
  dnnl::eltwise_backward::primitive_desc bpd(bd, b.eng, fpd);
  // diff may be the previous layer's own buffer: in place is allowed, nobody reads it after.
  b.add(b.bwd, dnnl::eltwise_backward(bpd),
        {{DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_DST, diff}, {DNNL_ARG_DIFF_SRC, diff}}, what, bpd);
  return diff;
}

}  // namespace ts
