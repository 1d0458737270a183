// Pooling: max (window K, stride s, padding that never wins the max), average (padding counted
// in the divisor or not: avg_include_pad) and global average.
// maxpool {N,C,H,W} -> {N,C,H',W'} with a workspace of arg-max positions shared with backward;
// global avg pool {N,C,H,W} -> {N,C,1,1}.
#include "net_builder.h"

namespace ts {
namespace {

class PoolLayer : public Layer {
 public:
  explicit PoolLayer(const LayerSpec& spec) : spec_(spec) {}

  memory build_forward(NetBuilder& b, const memory& src) override {
    const auto& s = spec_;
    const bool is_max = s.kind == LayerKind::kMaxPool;
    alg_ = is_max ? dnnl::algorithm::pooling_max
           : s.kind == LayerKind::kAvgPool && s.avg_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                                                 : dnnl::algorithm::pooling_avg_exclude_padding;
    kernel_ = {s.kernel, s.kernel};
    strides_ = {s.stride, s.stride};
    pad_l_ = {s.pad_begin, s.pad_begin};
    pad_r_ = {s.pad_end, s.pad_end};
    const memory::dims dst_dims = {b.n, s.out.c, s.out.h, s.out.w};
    // Pooling works in whatever layout its input has: no reorder.
    src_md_ = src.get_desc();
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_training, alg_, src_md_,
                                  any_md(dst_dims, src_md_.data_type()), strides_, kernel_, pad_l_, pad_r_);
    fwd_pd_ = dnnl::pooling_forward::primitive_desc(d, b.eng);
    dst_ = memory(fwd_pd_.dst_desc(), b.eng);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst_}};
    if (is_max) {
      workspace_ = memory(fwd_pd_.workspace_desc(), b.eng);
      args[DNNL_ARG_WORKSPACE] = workspace_;
    }
    b.add(b.fwd, dnnl::pooling_forward(fwd_pd_), std::move(args), s.name + " fwd", fwd_pd_);
    return dst_;
  }

  memory build_backward(NetBuilder& b, const memory& diff_dst_in, bool need_diff_src) override {
    if (!need_diff_src) return memory();  // no parameters: nothing to do
    const auto& s = spec_;
    dnnl::pooling_backward::desc d(alg_, src_md_, dst_.get_desc(), strides_, kernel_, pad_l_, pad_r_);
    dnnl::pooling_backward::primitive_desc pd(d, b.eng, fwd_pd_);
    memory diff_in = apply_upstream_relu_mask
                         ? relu_backward_in_place(b, dst_, diff_dst_in, s.name + " upstream relu bwd")
                         : diff_dst_in;
    memory diff_dst = b.convert(diff_in, pd.diff_dst_desc(), b.bwd, s.name + " diff reorder");
    memory diff_src(pd.diff_src_desc(), b.eng);
    std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}};
    if (workspace_) args[DNNL_ARG_WORKSPACE] = workspace_;
    b.add(b.bwd, dnnl::pooling_backward(pd), std::move(args), s.name + " bwd", pd);
    return diff_src;
  }

 private:
  LayerSpec spec_;
  dnnl::algorithm alg_ = dnnl::algorithm::pooling_max;
  memory::dims kernel_, strides_, pad_l_, pad_r_;
  memory::desc src_md_;
  dnnl::pooling_forward::primitive_desc fwd_pd_;
  memory dst_, workspace_;
};

}  // namespace

std::unique_ptr<Layer> make_pool_layer(const NetworkSpec&, const LayerSpec& spec) {
  return std::make_unique<PoolLayer>(spec);
}

}  // namespace ts
