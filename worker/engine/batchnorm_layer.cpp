// Batch norm over fixed groups of samples (ghost batch norm; the contract is at the top of
// common/network.h): scale fixed at 1 (or trained: bn_scale), shift trained, statistics of each group of bn_group
// consecutive samples. oneDNN's batch_normalization runs once per group on a view of the
// group's samples: every layout used here (nChw16c, nChw8c, nhwc, nchw) keeps the samples
// outermost, so a group is one contiguous slice of the activation.
//
// Training writes, besides the shift's gradient (summed over the groups), the sums of the
// groups' means and unbiased variances into the running-statistic slots of the gradient
// buffer, for the coordinator to average into the running statistics. Evaluation normalizes
// with the running statistics (oneDNN's use_global_stats).
#include <stdexcept>
#include <string>

#include "net_builder.h"

namespace ts {
namespace {

using flags = dnnl::normalization_flags;

class BatchNormLayer : public Layer {
 public:
  BatchNormLayer(const NetworkSpec& net, const LayerSpec& spec)
      : spec_(spec),
        has_scale_(spec.bn_scale),
        shift_(net.params[size_t(spec.bias_param)]),
        mean_(net.params[size_t(spec.bias_param) + 1]),
        var_(net.params[size_t(spec.bias_param) + 2]) {
    if (mean_.role != ParamSpec::Role::kRunningMean || var_.role != ParamSpec::Role::kRunningVar)
      throw std::logic_error(spec.name + ": running statistics must follow the shift (network.h)");
    if (has_scale_) scale_ = net.params[size_t(spec.weight_param)];
  }

  memory build_forward(NetBuilder& b, const memory& src_in) override {
    const auto& s = spec_;
    const memory::dims dims = {b.n, s.in.c, s.in.h, s.in.w};
    // Keep the layer's input layout where the samples are outermost, else nChw16c / nchw;
    // its data type is the activations' (statistics, shift: f32).
    const dt a = b.act;
    auto md = [a](const memory::dims& d, tag t) { return memory::desc(d, a, t); };
    tag t = s.in.c % 16 == 0 ? tag::nChw16c : tag::nchw;
    for (tag cand : {tag::nChw16c, tag::nChw8c, tag::nhwc, tag::nchw})
      if (src_in.get_desc() == md(dims, cand)) {
        t = cand;
        break;
      }
    src_ = b.convert(src_in, md(dims, t), b.fwd, s.name + " src reorder");
    dst_ = memory(md(dims, t), b.eng);
    tag_ = t;
    const memory::desc c_md = ts::md({s.in.c}, tag::x);
    memory shift = b.param_memory(shift_, c_md);
    const flags affine = has_scale_ ? flags::use_shift | flags::use_scale : flags::use_shift;
    memory scale = has_scale_ ? b.param_memory(scale_, c_md) : memory();
    auto with_scale = [&](std::unordered_map<int, memory> args) {
      if (has_scale_) args[DNNL_ARG_SCALE] = scale;
      return args;
    };
    if (!b.training) {
      // Evaluation: the running statistics, the whole batch at once.
      dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_inference, md(dims, t),
                                                s.bn_eps, flags::use_global_stats | affine);
      dnnl::batch_normalization_forward::primitive_desc pd(d, b.eng);
      b.add(b.fwd, dnnl::batch_normalization_forward(pd),
            with_scale({{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}, {DNNL_ARG_SHIFT, shift},
                        {DNNL_ARG_MEAN, b.param_memory(mean_, c_md)},
                        {DNNL_ARG_VARIANCE, b.param_memory(var_, c_md)}}),
            s.name + " fwd (running statistics)", pd);
      return dst_;
    }
    const int g = s.bn_group;
    if (g < 1 || b.n % g != 0)
      throw std::invalid_argument(s.name + ": a training batch of " + std::to_string(b.n) +
                                  " samples is not a whole number of batch-norm groups of " +
                                  std::to_string(g) + " (shares are dealt in whole groups)");
    groups_ = b.n / g;
    group_md_ = md({g, s.in.c, s.in.h, s.in.w}, t);
    dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_training, group_md_, s.bn_eps,
                                              affine);
    fwd_pd_ = dnnl::batch_normalization_forward::primitive_desc(d, b.eng);
    const size_t group_bytes = group_md_.get_size();
    const int C = s.in.c;
    stats_mean_ = memory(ts::md({groups_ * C}, tag::x), b.eng);
    stats_var_ = memory(ts::md({groups_ * C}, tag::x), b.eng);
    const dnnl::batch_normalization_forward prim(fwd_pd_);
    for (int k = 0; k < groups_; ++k) {
      GroupViews v;
      v.src = view(src_, group_md_, k * group_bytes);
      v.dst = view(dst_, group_md_, k * group_bytes);
      v.mean = view(stats_mean_, c_md, size_t(k) * C * sizeof(float));
      v.var = view(stats_var_, c_md, size_t(k) * C * sizeof(float));
      b.add(b.fwd, prim,
            with_scale({{DNNL_ARG_SRC, v.src}, {DNNL_ARG_DST, v.dst}, {DNNL_ARG_SHIFT, shift},
                        {DNNL_ARG_MEAN, v.mean}, {DNNL_ARG_VARIANCE, v.var}}),
            s.name + " fwd group " + std::to_string(k), fwd_pd_);
      views_.push_back(v);
    }
    return dst_;
  }

  memory build_backward(NetBuilder& b, const memory& diff_dst_in, bool need_diff_src) override {
    const auto& s = spec_;
    const int C = s.in.c;
    const memory::desc c_md = md({C}, tag::x);
    // The statistics for the coordinator: sums over the groups of the mean and the unbiased
    // variance (not scaled by the loss scale).
    memory g_mean = b.grad_out(mean_, c_md, c_md, s.name + " running mean");
    memory g_var = b.grad_out(var_, c_md, c_md, s.name + " running var");
    const double m = double(s.bn_group) * s.in.h * s.in.w;
    const float unbias = m > 1 ? float(m / (m - 1)) : 1.f;
    const int groups = groups_;
    memory sm = stats_mean_, sv = stats_var_;
    b.add_kernel(b.bwd, [g_mean, g_var, sm, sv, groups, C, unbias] {
      auto* om = static_cast<float*>(g_mean.get_data_handle());
      auto* ov = static_cast<float*>(g_var.get_data_handle());
      const auto* im = static_cast<const float*>(sm.get_data_handle());
      const auto* iv = static_cast<const float*>(sv.get_data_handle());
      for (int c = 0; c < C; ++c) {
        double a = 0, v = 0;
        for (int k = 0; k < groups; ++k) {
          a += im[size_t(k) * C + c];
          v += iv[size_t(k) * C + c];
        }
        om[c] = float(a);
        ov[c] = float(v * unbias);
      }
    }, s.name + " statistics out", "threadsplit:bn_stats");

    memory diff_dst = b.convert(diff_dst_in, dst_.get_desc(), b.bwd, s.name + " diff reorder");
    memory diff_src(dst_.get_desc(), b.eng);
    dnnl::batch_normalization_backward::desc d(dnnl::prop_kind::backward, group_md_, group_md_,
                                               s.bn_eps, has_scale_ ? flags::use_shift | flags::use_scale
                                                                    : flags::use_shift);
    dnnl::batch_normalization_backward::primitive_desc pd(d, b.eng, fwd_pd_);
    const dnnl::batch_normalization_backward prim(pd);
    diff_shifts_ = memory(md({groups_ * C}, tag::x), b.eng);
    const size_t group_bytes = group_md_.get_size();
    memory shift = b.param_memory(shift_, c_md);
    if (has_scale_) diff_scales_ = memory(md({groups_ * C}, tag::x), b.eng);
    memory scale = has_scale_ ? b.param_memory(scale_, c_md) : memory();
    for (int k = 0; k < groups_; ++k) {
      const GroupViews& v = views_[size_t(k)];
      std::unordered_map<int, memory> args = {
          {DNNL_ARG_SRC, v.src}, {DNNL_ARG_MEAN, v.mean}, {DNNL_ARG_VARIANCE, v.var},
          {DNNL_ARG_DIFF_DST, view(diff_dst, group_md_, k * group_bytes)},
          {DNNL_ARG_SHIFT, shift},
          {DNNL_ARG_DIFF_SRC, view(diff_src, group_md_, k * group_bytes)},
          {DNNL_ARG_DIFF_SHIFT, view(diff_shifts_, c_md, size_t(k) * C * sizeof(float))}};
      if (has_scale_) {
        args[DNNL_ARG_SCALE] = scale;
        args[DNNL_ARG_DIFF_SCALE] = view(diff_scales_, c_md, size_t(k) * C * sizeof(float));
      }
      b.add(b.bwd, prim, std::move(args), s.name + " bwd group " + std::to_string(k), pd);
    }
    if (has_scale_) {
      // The scale's gradient, summed over the groups (written before the shift's: network.h
      // orders the scale first, and backward's progress marks count from a layer's first).
      sum_over_groups(b, scale_, diff_scales_, s.name + " dscale", "threadsplit:bn_dscale");
    }
    sum_over_groups(b, shift_, diff_shifts_, s.name + " dshift", "threadsplit:bn_dshift");
    return need_diff_src ? diff_src : memory();
  }

 private:
  struct GroupViews {
    memory src, dst, mean, var;
  };
  // The gradient of `p` in the caller's buffer: the per-group gradients `per_group`
  // ([groups, C]) summed over the groups, in group order.
  void sum_over_groups(NetBuilder& b, const ParamSpec& p, const memory& per_group, const std::string& what,
                       const std::string& impl) const {
    const int C = spec_.in.c, groups = groups_;
    const memory::desc c_md = md({C}, tag::x);
    memory out = b.grad_out(p, c_md, c_md, what);
    b.add_kernel(b.bwd, [out, per_group, groups, C] {
      auto* o = static_cast<float*>(out.get_data_handle());
      const auto* in = static_cast<const float*>(per_group.get_data_handle());
      for (int c = 0; c < C; ++c) {
        float a = 0;
        for (int k = 0; k < groups; ++k) a += in[size_t(k) * C + c];
        o[c] = a;
      }
    }, what + " sum", impl);
  }

  // A memory of desc `d` over `whole`'s buffer at byte offset `offset`.
  memory view(const memory& whole, const memory::desc& d, size_t offset) const {
    auto* base = static_cast<char*>(whole.get_data_handle());
    return memory(d, whole.get_engine(), base + offset);
  }

  LayerSpec spec_;
  bool has_scale_ = false;  // bn_scale: a trained scale (imported affine batch norm)
  ParamSpec scale_, shift_, mean_, var_;
  tag tag_ = tag::nchw;
  int groups_ = 0;
  memory::desc group_md_;
  dnnl::batch_normalization_forward::primitive_desc fwd_pd_;
  memory src_, dst_, stats_mean_, stats_var_, diff_shifts_, diff_scales_;
  std::vector<GroupViews> views_;
};

}  // namespace

std::unique_ptr<Layer> make_batchnorm_layer(const NetworkSpec& net, const LayerSpec& spec) {
  return std::make_unique<BatchNormLayer>(net, spec);
}

}  // namespace ts
