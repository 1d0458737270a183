// GELU, exact (erf) form, in whatever layout its input has: oneDNN's eltwise_gelu_erf
// forward, and backward against the forward's input.
#include "net_builder.h"

namespace ts {
namespace {

class EltwiseLayer : public Layer {
 public:
  EltwiseLayer(const LayerSpec& spec, dnnl::algorithm alg, float alpha)
      : spec_(spec), alg_(alg), alpha_(alpha) {}

  memory build_forward(NetBuilder& b, const memory& src) override {
    src_ = src;
    const auto prop = b.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    dnnl::eltwise_forward::desc d(prop, alg_, src.get_desc(), alpha_, 0.f);
    fwd_pd_ = dnnl::eltwise_forward::primitive_desc(d, b.eng);
    dst_ = memory(fwd_pd_.dst_desc(), b.eng);
    b.add(b.fwd, dnnl::eltwise_forward(fwd_pd_), {{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}},
          spec_.name + " fwd", fwd_pd_);
    return dst_;
  }

  memory build_backward(NetBuilder& b, const memory& diff_dst_in, bool need_diff_src) override {
    if (!need_diff_src) return memory();  // no parameters
    memory diff_dst = b.convert(diff_dst_in, dst_.get_desc(), b.bwd, spec_.name + " diff reorder");
    dnnl::eltwise_backward::desc d(alg_, diff_dst.get_desc(), src_.get_desc(), alpha_, 0.f);
    dnnl::eltwise_backward::primitive_desc pd(d, b.eng, fwd_pd_);
    memory diff_src(pd.diff_src_desc(), b.eng);
    b.add(b.bwd, dnnl::eltwise_backward(pd),
          {{DNNL_ARG_SRC, src_}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}},
          spec_.name + " bwd", pd);
    return diff_src;
  }

 private:
  LayerSpec spec_;
  dnnl::algorithm alg_;
  float alpha_;
  dnnl::eltwise_forward::primitive_desc fwd_pd_;
  memory src_, dst_;
};

}  // namespace

std::unique_ptr<Layer> make_gelu_layer(const NetworkSpec&, const LayerSpec& spec) {
  return std::make_unique<EltwiseLayer>(spec, dnnl::algorithm::eltwise_gelu_erf, 0.f);
}

// kRelu: max(x, 0) on its own (an imported graph's Relu that no conv or dense fuses); its
// backward masks against the forward's input.
std::unique_ptr<Layer> make_relu_layer(const NetworkSpec&, const LayerSpec& spec) {
  return std::make_unique<EltwiseLayer>(spec, dnnl::algorithm::eltwise_relu, 0.f);
}

// kScale: y = scale * x (eltwise_linear, alpha = scale, beta = 0); its backward scales the
// gradient alike.
std::unique_ptr<Layer> make_scale_layer(const NetworkSpec&, const LayerSpec& spec) {
  return std::make_unique<EltwiseLayer>(spec, dnnl::algorithm::eltwise_linear, spec.scale);
}

}  // namespace ts
