// Local response normalization across channels, {N,C,H,W} -> {N,C,H,W}:
// dst = src / (k + alpha / size * sum_{|c'-c| <= size/2} src_c'^2)^beta.
#include "lrn_kernel.h"
#include "net_builder.h"

namespace ts {
namespace {

class LrnLayer : public Layer {
 public:
  explicit LrnLayer(const LayerSpec& spec) : spec_(spec) {}

  memory build_forward(NetBuilder& b, const memory& src) override {
    const auto& s = spec_;
    src_ = src;
    dnnl::lrn_forward::desc d(dnnl::prop_kind::forward_training,
                              dnnl::algorithm::lrn_across_channels, src.get_desc(), s.lrn_size,
                              s.lrn_alpha, s.lrn_beta, s.lrn_k);
    fwd_pd_ = dnnl::lrn_forward::primitive_desc(d, b.eng);
    // oneDNN's reference LRN is ~100x slower than a plain loop: use ours where it would be chosen.
    const bool reference = std::string(fwd_pd_.impl_info_str()).find("ref") != std::string::npos;
    if (reference && channel_layout_of(src.get_desc(), &layout_)) {
      own_kernel_ = true;
      params_ = {s.lrn_size, s.lrn_alpha, s.lrn_beta, s.lrn_k};
      dst_ = memory(src.get_desc(), b.eng);
      scale_.assign(size_t(b.n) * layout_.pixels * layout_.channels, 0.f);
      const int n = b.n;
      memory dst = dst_;
      b.add_kernel(b.fwd, [this, n, src, dst] {
        lrn_forward_kernel(layout_, n, params_, static_cast<const float*>(src.get_data_handle()),
                           static_cast<float*>(dst.get_data_handle()), scale_.data());
      }, s.name + " fwd", "threadsplit:lrn_across_channels");
      return dst_;
    }
    dst_ = memory(fwd_pd_.dst_desc(), b.eng);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst_}};
    if (fwd_pd_.workspace_desc().get_size() > 0) {
      workspace_ = memory(fwd_pd_.workspace_desc(), b.eng);
      args[DNNL_ARG_WORKSPACE] = workspace_;
    }
    b.add(b.fwd, dnnl::lrn_forward(fwd_pd_), std::move(args), s.name + " fwd", fwd_pd_);
    return dst_;
  }

  memory build_backward(NetBuilder& b, const memory& diff_dst_in, bool need_diff_src) override {
    if (!need_diff_src) return memory();
    const auto& s = spec_;
    if (own_kernel_) {
      memory diff_dst = b.convert(diff_dst_in, src_.get_desc(), b.bwd, s.name + " diff reorder");
      memory diff_src(src_.get_desc(), b.eng);
      const int n = b.n;
      memory src = src_;
      b.add_kernel(b.bwd, [this, n, src, diff_dst, diff_src] {
        lrn_backward_kernel(layout_, n, params_, static_cast<const float*>(src.get_data_handle()),
                            static_cast<const float*>(diff_dst.get_data_handle()), scale_.data(),
                            static_cast<float*>(diff_src.get_data_handle()));
      }, s.name + " bwd", "threadsplit:lrn_across_channels");
      return diff_src;
    }
    dnnl::lrn_backward::desc d(dnnl::algorithm::lrn_across_channels, src_.get_desc(),
                               dst_.get_desc(), s.lrn_size, s.lrn_alpha, s.lrn_beta, s.lrn_k);
    dnnl::lrn_backward::primitive_desc pd(d, b.eng, fwd_pd_);
    memory diff_dst = b.convert(diff_dst_in, pd.diff_dst_desc(), b.bwd, s.name + " diff reorder");
    memory diff_src(pd.diff_src_desc(), b.eng);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}};
    if (workspace_) args[DNNL_ARG_WORKSPACE] = workspace_;
    b.add(b.bwd, dnnl::lrn_backward(pd), std::move(args), s.name + " bwd", pd);
    return diff_src;
  }

 private:
  LayerSpec spec_;
  dnnl::lrn_forward::primitive_desc fwd_pd_;
  memory src_, dst_, workspace_;
  bool own_kernel_ = false;  // oneDNN offers only its reference code for this shape
  ChannelLayout layout_;
  LrnParams params_;
  std::vector<float> scale_;  // forward's k + alpha/size * window sum, kept for backward
};

}  // namespace

std::unique_ptr<Layer> make_lrn_layer(const NetworkSpec&, const LayerSpec& spec) {
  return std::make_unique<LrnLayer>(spec);
}

}  // namespace ts
