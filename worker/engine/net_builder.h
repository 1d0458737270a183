// What layers build into: lists of oneDNN primitives with their argument maps, executed in
// order (the shape of oneDNN's cnn_training_f32 example), plus the edge bookkeeping:
// parameter reorders run only when parameters change, gradient memories whose data handle
// points into the caller's flat buffer.
#pragma once
#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnnl.hpp"
#include "network.h"

namespace ts {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct Op {
  dnnl::primitive prim;
  std::unordered_map<int, memory> args;
  std::string what;  // "conv1 fwd", for implementation reports
  std::string impl;  // oneDNN implementation name, or "threadsplit:..." for our own kernels
  std::function<void()> kernel;  // our own kernel, run instead of prim when set
};

// A memory whose data handle is re-pointed to (base + offset) of a caller's buffer each call.
struct BoundMemory {
  memory mem;
  size_t offset = 0;  // in floats
};

struct NetBuilder {
  dnnl::engine eng;
  int n = 0;                             // batch size
  dt act = dt::f32;                      // activations and weights as the primitives see them:
                                         // f32, or bf16 (gradients, statistics, loss stay f32)
  bool training = true;                  // false: an evaluation replica (forward only; batch
                                         // norm uses the running statistics)
  bool winograd = true;                  // let 3x3 stride-1 convolutions use Winograd
  const float* params = nullptr;         // the model's flat parameter copy (user layouts)
  std::vector<Op> load;                  // parameter reorders, run after set_params
  std::vector<Op> fwd;                   // forward, in layer order
  std::vector<Op> bwd;                   // backward, in reverse layer order
  std::vector<BoundMemory> grad_outputs; // re-pointed into the caller's gradient buffer

  // A memory in layout `want`, fed from `have` by a reorder appended to `ops` when the two
  // differ; returns `have` itself when they match (no copy).
  memory convert(const memory& have, const memory::desc& want, std::vector<Op>& ops,
                 const std::string& what) {
    if (have.get_desc() == want) return have;
    memory out(want, eng);
    add(ops, dnnl::reorder(have, out), {{DNNL_ARG_FROM, have}, {DNNL_ARG_TO, out}}, what,
        dnnl::reorder::primitive_desc(have, out));
    return out;
  }

  // The parameter tensor `p` as a user-layout memory over the flat parameter copy.
  memory param_memory(const ParamSpec& p, const memory::desc& user_md) {
    return memory(user_md, eng, const_cast<float*>(params + p.offset));
  }

  // Parameter `p` (user layout user_md) in the layout a primitive chose; the reorder, if
  // any, joins the load list.
  memory param_in(const ParamSpec& p, const memory::desc& user_md, const memory::desc& want,
                  const std::string& what) {
    return convert(param_memory(p, user_md), want, load, what);
  }

  // The gradient of `p`: the primitive writes `chosen`; the flat buffer wants user_md. Returns
  // the memory to pass to the primitive; a reorder into the caller's buffer joins bwd.
  memory grad_out(const ParamSpec& p, const memory::desc& user_md, const memory::desc& chosen,
                  const std::string& what) {
    memory user(user_md, eng, nullptr);
    grad_outputs.push_back({user, p.offset});
    if (chosen == user_md) return user;
    memory staged(chosen, eng);
    pending_grad_reorders.push_back({staged, user, what});
    return staged;
  }

  // The gradient of a frozen parameter: zeros, written into the caller's buffer every step
  // (every float of the gradient is written: network.h).
  void zero_grad(const ParamSpec& p, const std::string& what) {
    memory user(memory::desc({memory::dim(p.size)}, dt::f32, tag::x), eng, nullptr);
    grad_outputs.push_back({user, p.offset});
    const size_t count = p.size;
    add_kernel(bwd, [user, count] { std::fill_n(static_cast<float*>(user.get_data_handle()), count, 0.f); },
               what, "threadsplit:zero");
  }

  // Gradient reorders are appended after the primitive that writes them (call after add).
  void flush_grad_reorders() {
    for (auto& r : pending_grad_reorders)
      add(bwd, dnnl::reorder(r.from, r.to), {{DNNL_ARG_FROM, r.from}, {DNNL_ARG_TO, r.to}},
          r.what, dnnl::reorder::primitive_desc(r.from, r.to));
    pending_grad_reorders.clear();
  }

  // One of our own kernels, for what oneDNN only has a reference implementation of.
  void add_kernel(std::vector<Op>& ops, std::function<void()> fn, const std::string& what,
                  const std::string& impl) {
    Op op;
    op.kernel = std::move(fn);
    op.what = what;
    op.impl = impl;
    ops.push_back(std::move(op));
  }

  template <class Prim, class Pd>
  void add(std::vector<Op>& ops, const Prim& prim, std::unordered_map<int, memory> args,
           const std::string& what, const Pd& pd) {
    ops.push_back({prim, std::move(args), what, pd.impl_info_str(), {}});
  }

 private:
  struct PendingReorder {
    memory from, to;
    std::string what;
  };
  std::vector<PendingReorder> pending_grad_reorders;
};

// One layer of the replica: builds its forward ops from its input, then its backward ops from
// the gradient of its output. `diff_dst` may be in any layout; the layer converts as needed.
class Layer {
 public:
  virtual ~Layer() = default;
  // Returns the output memory (layout chosen by the primitive).
  virtual memory build_forward(NetBuilder& b, const memory& src) = 0;
  // Returns the gradient w.r.t. the input, or an empty memory when !need_diff_src. A layer of
  // two inputs (kAdd) returns the gradient of both: the same values.
  virtual memory build_backward(NetBuilder& b, const memory& diff_dst, bool need_diff_src) = 0;
  // A layer of two inputs (kAdd) is given its second before build_forward.
  virtual void set_second_input(const memory&) {}

  // ReLU then max pooling: relu'(x) at the window's arg-max is [pooled output > 0], so the
  // pool applies the ReLU mask to its (4x smaller) output gradient and the layer before it
  // skips its own ReLU backward. Same result, a quarter of the memory traffic. Set by Model.
  bool relu_backward_done_downstream = false;  // on the conv/dense with fused ReLU
  bool apply_upstream_relu_mask = false;       // on the max pool that follows it
};

// Factories, one file per layer kind.
std::unique_ptr<Layer> make_conv_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_pool_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_lrn_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_dense_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_batchnorm_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_gelu_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_scale_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_relu_layer(const NetworkSpec& net, const LayerSpec& spec);
std::unique_ptr<Layer> make_add_layer(const NetworkSpec& net, const LayerSpec& spec);

// Shared helpers.
inline memory::desc md(const memory::dims& dims, tag t) { return memory::desc(dims, dt::f32, t); }
inline memory::desc any_md(const memory::dims& dims) { return md(dims, tag::any); }
inline memory::desc any_md(const memory::dims& dims, dt type) { return memory::desc(dims, type, tag::any); }

// Attributes that fuse a ReLU after the primitive (or nothing when !relu).
inline dnnl::primitive_attr fused_relu_attr(bool relu) {
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  return attr;
}

// ReLU backward against the fused forward's output (relu'(x) = [y > 0]), in place on diff.
// Returns diff converted to dst's layout, with the ReLU mask applied.
memory relu_backward_in_place(NetBuilder& b, const memory& dst, const memory& diff_dst,
                              const std::string& what);

}  // namespace ts
