// Fully connected + bias with optional fused ReLU.
// dense {N,C,H,W} or {N,C} (x) {O, C*H*W} + {O} -> {N,O}; the input is flattened in C,H,W
// order, which is what the 4-D weights {O,C,H,W} in oihw layout are, byte for byte.
#include "net_builder.h"

namespace ts {
namespace {

class DenseLayer : public Layer {
 public:
  DenseLayer(const NetworkSpec& net, const LayerSpec& spec)
      : spec_(spec), w_(net.params[size_t(spec.weight_param)]), has_bias_(spec.bias_param >= 0) {
    if (has_bias_) bias_ = net.params[size_t(spec.bias_param)];
  }

  memory build_forward(NetBuilder& b, const memory& src) override {
    const auto& s = spec_;
    // A spatial input is flattened: reordered to plain NCHW, then viewed as {N, C*H*W}. That
    // is PyTorch's flatten, and a 2-D inner product gets oneDNN's brgemm kernels where a 4-D
    // one fell back to plain gemm (measured on tf_tutorial_cnn's fc3).
    a_ = b.act;
    memory flat_src = src;
    if (src.get_desc().dims().size() == 4) {
      memory plain = b.convert(src, memory::desc({b.n, s.in.c, s.in.h, s.in.w}, a_, tag::nchw), b.fwd,
                               s.name + " flatten reorder");
      flat_src = memory(memory::desc({b.n, int(s.in.size())}, a_, tag::nc), b.eng, plain.get_data_handle());
      spatial_input_ = true;
    }
    src_dims_ = {b.n, int(s.in.size())};
    w_dims_ = {s.out.c, int(s.in.size())};
    w_user_ = md(w_dims_, tag::oi);
    b_user_ = has_bias_ ? md({s.out.c}, tag::x) : memory::desc();  // empty: no bias
    const memory::dims dst_dims = {b.n, s.out.c};

    dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_training, any_md(src_dims_, a_),
                                        any_md(w_dims_, a_), b_user_, any_md(dst_dims, a_));
    const dnnl::primitive_attr attr = fused_relu_attr(s.relu);
    fwd_pd_ = dnnl::inner_product_forward::primitive_desc(d, attr, b.eng);
    src_ = b.convert(flat_src, fwd_pd_.src_desc(), b.fwd, s.name + " src reorder");
    weights_ = b.param_in(w_, w_user_, fwd_pd_.weights_desc(), s.name + " weight reorder");
    dst_ = memory(fwd_pd_.dst_desc(), b.eng);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_}};
    if (has_bias_) args[DNNL_ARG_BIAS] = b.param_memory(bias_, b_user_);
    b.add(b.fwd, dnnl::inner_product_forward(fwd_pd_), std::move(args), s.name + " fwd", fwd_pd_);
    return dst_;
  }

  memory build_backward(NetBuilder& b, const memory& diff_dst_in, bool need_diff_src) override {
    const auto& s = spec_;
    memory diff_dst = s.relu && !relu_backward_done_downstream
                          ? relu_backward_in_place(b, dst_, diff_dst_in, s.name + " relu bwd")
                             : b.convert(diff_dst_in, dst_.get_desc(), b.bwd, s.name + " diff reorder");
    const memory::dims dst_dims = {b.n, s.out.c};

    dnnl::inner_product_backward_weights::desc dw(any_md(src_dims_, a_), any_md(w_dims_), b_user_,
                                                  any_md(dst_dims, a_));
    dnnl::inner_product_backward_weights::primitive_desc bw_pd(dw, b.eng, fwd_pd_);
    memory bw_src = b.convert(src_, bw_pd.src_desc(), b.bwd, s.name + " bwd-w src reorder");
    memory bw_diff = b.convert(diff_dst, bw_pd.diff_dst_desc(), b.bwd, s.name + " bwd-w diff reorder");
    if (s.frozen) b.zero_grad(w_, s.name + " frozen dW");
    memory dweights = s.frozen ? memory(bw_pd.diff_weights_desc(), b.eng)
                               : b.grad_out(w_, w_user_, bw_pd.diff_weights_desc(), s.name + " dW reorder");
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, bw_src}, {DNNL_ARG_DIFF_DST, bw_diff},
                                            {DNNL_ARG_DIFF_WEIGHTS, dweights}};
    if (has_bias_)
      args[DNNL_ARG_DIFF_BIAS] = b.grad_out(bias_, b_user_, bw_pd.diff_bias_desc(), s.name + " db reorder");
    b.add(b.bwd, dnnl::inner_product_backward_weights(bw_pd), std::move(args), s.name + " bwd weights", bw_pd);
    b.flush_grad_reorders();
    if (!need_diff_src) return memory();

    dnnl::inner_product_backward_data::desc dd(any_md(src_dims_, a_), any_md(w_dims_, a_),
                                               any_md(dst_dims, a_));
    dnnl::inner_product_backward_data::primitive_desc bd_pd(dd, b.eng, fwd_pd_);
    memory w = b.convert(weights_, bd_pd.weights_desc(), b.load, s.name + " bwd-d weight reorder");
    memory bd_diff = b.convert(diff_dst, bd_pd.diff_dst_desc(), b.bwd, s.name + " bwd-d diff reorder");
    memory diff_src(bd_pd.diff_src_desc(), b.eng);
    b.add(b.bwd, dnnl::inner_product_backward_data(bd_pd),
          {{DNNL_ARG_DIFF_DST, bd_diff}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, diff_src}},
          s.name + " bwd data", bd_pd);
    if (!spatial_input_) return diff_src;
    // Un-flatten: the plain {N, C*H*W} gradient is the NCHW gradient of the spatial input.
    memory plain = b.convert(diff_src, memory::desc(src_dims_, a_, tag::nc), b.bwd, s.name + " diff flatten reorder");
    return memory(memory::desc({b.n, s.in.c, s.in.h, s.in.w}, a_, tag::nchw), b.eng, plain.get_data_handle());
  }

 private:
  LayerSpec spec_;
  ParamSpec w_, bias_;
  bool has_bias_ = true;
  dt a_ = dt::f32;
  memory::dims src_dims_, w_dims_;
  bool spatial_input_ = false;
  memory::desc w_user_, b_user_;
  dnnl::inner_product_forward::primitive_desc fwd_pd_;
  memory src_, dst_, weights_;
};

}  // namespace

std::unique_ptr<Layer> make_dense_layer(const NetworkSpec& net, const LayerSpec& spec) {
  return std::make_unique<DenseLayer>(net, spec);
}

}  // namespace ts
