#include "model.h"

#include <omp.h>

#include <stdexcept>
#include <string>

#include "gradient_buckets.h"
#include "net_builder.h"
#include "softmax_xent.h"
#include "timing.h"

namespace ts {

// Everything oneDNN needs for one batch size: the primitive lists and their memories.
struct Model::BatchNet {
  NetBuilder b;
  std::vector<std::unique_ptr<Layer>> layers;
  memory input;        // user images, NCHW, re-pointed at the caller's buffer each call
  memory logits;       // plain {n, K}
  memory diff_logits;  // plain {n, K}
  uint64_t loaded_version = ~uint64_t(0);
  // Backward's progress: once the first `ops` of b.bwd ran, the gradient from float
  // `ready_from` of the flat buffer to its end is final (a layer's gradient reorders follow
  // its own primitives: NetBuilder::flush_grad_reorders).
  struct Mark {
    size_t ops, ready_from;
  };
  std::vector<Mark> bwd_marks;
};

struct Model::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::vector<float> params;  // user layouts, never reallocated: memories point into it
  uint64_t version = 0;
  std::map<int, std::unique_ptr<BatchNet>> nets;
  std::map<int, std::unique_ptr<BatchNet>> eval_nets;  // networks with batch norm only
  std::vector<float> last_logits;
};

namespace {

std::unique_ptr<Layer> make_layer(const NetworkSpec& net, const LayerSpec& l) {
  switch (l.kind) {
    case LayerKind::kConv: return make_conv_layer(net, l);
    case LayerKind::kMaxPool:
    case LayerKind::kGlobalAvgPool: return make_pool_layer(net, l);
    case LayerKind::kLrn: return make_lrn_layer(net, l);
    case LayerKind::kDense: return make_dense_layer(net, l);
    case LayerKind::kBatchNorm: return make_batchnorm_layer(net, l);
    case LayerKind::kGelu: return make_gelu_layer(net, l);
    case LayerKind::kScale: return make_scale_layer(net, l);
    case LayerKind::kRelu: return make_relu_layer(net, l);
    case LayerKind::kAvgPool: return make_pool_layer(net, l);
    case LayerKind::kAdd: return make_add_layer(net, l);
  }
  throw std::logic_error("unknown layer kind");
}

// A copy of `m` (a reorder to its own layout), appended to backward.
memory copy_of(NetBuilder& b, const memory& m, const std::string& layer) {
  memory out(m.get_desc(), b.eng);
  b.add(b.bwd, dnnl::reorder(m, out), {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, out}}, layer + " diff copy",
        dnnl::reorder::primitive_desc(m, out));
  return out;
}

// The sum of an output's gradients from its readers, in the first one's layout (one reader:
// its memory itself).
memory sum_of(NetBuilder& b, const std::vector<memory>& parts, const std::string& layer) {
  if (parts.empty()) throw std::logic_error(layer + ": no reader's gradient reaches this layer's output");
  if (parts.size() == 1) return parts[0];
  const memory::desc d = parts[0].get_desc();
  std::vector<memory> same;
  std::vector<memory::desc> descs;
  for (size_t i = 0; i < parts.size(); ++i) {
    same.push_back(b.convert(parts[i], d, b.bwd, layer + " diff reorder for the sum"));
    descs.push_back(d);
  }
  dnnl::sum::primitive_desc pd(d, std::vector<float>(parts.size(), 1.f), descs, b.eng);
  memory out(pd.dst_desc(), b.eng);
  std::unordered_map<int, memory> args = {{DNNL_ARG_DST, out}};
  for (size_t i = 0; i < same.size(); ++i) args[DNNL_ARG_MULTIPLE_SRC + int(i)] = same[i];
  b.add(b.bwd, dnnl::sum(pd), std::move(args), layer + " diff sum", pd);
  return out;
}

void run(const std::vector<Op>& ops, dnnl::stream& s) {
  for (const auto& op : ops) {
    if (op.kernel)
      op.kernel();  // synchronous; oneDNN's CPU stream is in-order and synchronous too
    else
      op.prim.execute(s, op.args);
  }
}

}  // namespace

Model::Model(const NetworkSpec& net, int max_batch, ModelOptions options)
    : net_(net), max_batch_(max_batch), options_(options), impl_(std::make_unique<Impl>()) {
  if (max_batch <= 0) throw std::invalid_argument("Model: max_batch must be positive");
  if (options_.precision != "f32" && options_.precision != "bf16")
    throw std::invalid_argument("Model: precision must be f32 or bf16, got '" + options_.precision + "'");
  if (options_.precision == "bf16" && dnnl::get_effective_cpu_isa() < dnnl::cpu_isa::avx512_core_bf16)
    throw std::invalid_argument("--precision bf16 needs a CPU with avx512_bf16 (or AMX), which "
                                "oneDNN does not find on this one: use --precision f32");
  impl_->params.assign(net_.num_params, 0.f);
}

Model::~Model() = default;

void Model::set_params(const float* flat) {
  std::copy(flat, flat + net_.num_params, params_to_overwrite());
}

float* Model::params_to_overwrite() {
  ++impl_->version;
  return impl_->params.data();
}

Model::BatchNet& Model::net_for(int n, bool training) {
  if (n <= 0 || n > max_batch_)
    throw std::invalid_argument("batch of " + std::to_string(n) + " samples; this model takes 1.." +
                                std::to_string(max_batch_));
  // Only batch norm computes differently in evaluation; other networks share one replica.
  const bool separate_eval = !training && net_.sample_granule() > 1;
  auto& slot = separate_eval ? impl_->eval_nets[n] : impl_->nets[n];
  if (slot) return *slot;
  auto bn = std::make_unique<BatchNet>();
  NetBuilder& b = bn->b;
  b.eng = impl_->eng;
  b.n = n;
  b.training = !separate_eval;
  b.act = options_.precision == "bf16" ? dt::bf16 : dt::f32;
  b.winograd = options_.winograd;
  b.params = impl_->params.data();
  const auto& in = net_.input;
  bn->input = memory(md({n, in.c, in.h, in.w}, tag::nchw), b.eng, nullptr);
  // The layers in order; each reads the outputs its inputs name (a chain for the built-in
  // nets: the previous layer's). `readers[j]`: how many inputs read layer j's output.
  const size_t L = net_.layers.size();
  std::vector<memory> outputs(L);
  std::vector<int> readers(L, 0);
  for (size_t i = 0; i < L; ++i)
    for (int j : layer_inputs(net_, i))
      if (j != kNetworkInput) ++readers[size_t(j)];
  auto output_of = [&](int j) { return j == kNetworkInput ? bn->input : outputs[size_t(j)]; };
  for (size_t i = 0; i < L; ++i) {
    const std::vector<int> ins = layer_inputs(net_, i);
    bn->layers.push_back(make_layer(net_, net_.layers[i]));
    const int from = ins[0];
    if (from >= 0 && net_.layers[i].kind == LayerKind::kMaxPool && net_.layers[size_t(from)].relu &&
        readers[size_t(from)] == 1 &&
        (net_.layers[size_t(from)].kind == LayerKind::kConv || net_.layers[size_t(from)].kind == LayerKind::kDense)) {
      bn->layers[size_t(from)]->relu_backward_done_downstream = true;
      bn->layers[i]->apply_upstream_relu_mask = true;
    }
    if (ins.size() > 1) bn->layers[i]->set_second_input(output_of(ins[1]));
    outputs[i] = bn->layers[i]->build_forward(b, output_of(from));
  }
  const int k = net_.num_classes;
  bn->logits = b.convert(outputs[L - 1], md({n, k}, tag::nc), b.fwd, "logits reorder");
  bn->diff_logits = memory(md({n, k}, tag::nc), b.eng);
  // Input gradients are needed only above the first layer with parameters.
  size_t first_with_params = 0;
  while (first_with_params < L && net_.layers[first_with_params].weight_param < 0 &&
         net_.layers[first_with_params].bias_param < 0)
    ++first_with_params;
  if (b.training) {
    // Backward in reverse layer order. The gradient of an output read by several layers is
    // the sum of theirs (a residual fork); each contribution is the reader's own memory.
    std::vector<std::vector<memory>> diffs(L);
    diffs[L - 1].push_back(bn->diff_logits);
    for (size_t i = L; i-- > 0;) {
      memory diff = sum_of(b, diffs[i], net_.layers[i].name);
      diffs[i].clear();
      const std::vector<int> ins = layer_inputs(net_, i);
      const bool need = i > first_with_params;
      memory dsrc = bn->layers[i]->build_backward(b, diff, need);
      if (need && dsrc)
        for (size_t k_in = 0; k_in < ins.size(); ++k_in) {
          if (ins[k_in] == kNetworkInput) continue;
          // Two inputs get the same gradient: the second a copy, because a reader may mask
          // its gradient in place (a fused ReLU's backward).
          diffs[size_t(ins[k_in])].push_back(k_in == 0 ? dsrc : copy_of(b, dsrc, net_.layers[i].name));
        }
      const size_t begin = layer_param_begin(net_, i);
      if (begin < net_.num_params) bn->bwd_marks.push_back({b.bwd.size(), begin});
    }
  }
  slot = std::move(bn);
  return *slot;
}

// Loads parameters if they changed, runs the forward list and the loss; writes the logits'
// gradient (scaled by loss_scale) when `with_gradient`.
StepStats Model::forward_and_loss(BatchNet& bn, const float* images, const int32_t* labels, int n,
                                  float loss_scale, bool with_gradient) {
  auto& s = impl_->strm;
  StepStats st;
  Stopwatch sw;
  if (bn.loaded_version != impl_->version) {
    run(bn.b.load, s);
    bn.loaded_version = impl_->version;
  }
  bn.input.set_data_handle(const_cast<float*>(images));
  run(bn.b.fwd, s);
  s.wait();
  const int k = net_.num_classes;
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= k)
      throw std::invalid_argument("label " + std::to_string(labels[i]) + " out of range");
  auto* logits = static_cast<const float*>(bn.logits.get_data_handle());
  auto* dlogits = with_gradient ? static_cast<float*>(bn.diff_logits.get_data_handle()) : nullptr;
  const XentResult xr =
      softmax_xent(logits, labels, n, k, loss_scale, dlogits, with_gradient ? options_.label_smoothing : 0.0);
  impl_->last_logits.assign(logits, logits + size_t(n) * k);
  st.loss_sum = xr.loss_sum;
  st.correct = xr.correct;
  st.forward_s = sw.elapsed();
  return st;
}

StepStats Model::train_step(const float* images, const int32_t* labels, int n, float loss_scale,
                            float* grad, const std::function<void(size_t)>& on_ready) {
  BatchNet& bn = net_for(n);
  StepStats st = forward_and_loss(bn, images, labels, n, loss_scale, true);
  Stopwatch sw;
  for (auto& g : bn.b.grad_outputs) g.mem.set_data_handle(grad + g.offset);
  if (!on_ready) {
    run(bn.b.bwd, impl_->strm);
  } else {
    // Layer by layer, saying after each how much of the gradient is final. The time spent
    // in on_ready (sending buckets) is the caller's, not backward's.
    const auto& ops = bn.b.bwd;
    size_t done = 0;
    double outside_s = 0;
    for (const BatchNet::Mark& m : bn.bwd_marks) {
      for (; done < m.ops; ++done) {
        if (ops[done].kernel) ops[done].kernel();
        else ops[done].prim.execute(impl_->strm, ops[done].args);
      }
      impl_->strm.wait();
      const Stopwatch out;
      on_ready(m.ready_from);
      outside_s += out.elapsed();
    }
    for (; done < ops.size(); ++done) {
      if (ops[done].kernel) ops[done].kernel();
      else ops[done].prim.execute(impl_->strm, ops[done].args);
    }
    impl_->strm.wait();
    const Stopwatch out;
    on_ready(0);
    outside_s += out.elapsed();
    st.backward_s = sw.elapsed() - outside_s;
    st.send_s = outside_s;
    return st;
  }
  impl_->strm.wait();
  st.backward_s = sw.elapsed();
  return st;
}

StepStats Model::evaluate(const float* images, const int32_t* labels, int n) {
  return forward_and_loss(net_for(n, false), images, labels, n, 0.f, false);
}

std::vector<float> Model::last_logits() const { return impl_->last_logits; }

std::vector<std::string> Model::implementation_names(int n) {
  BatchNet& bn = net_for(n);
  std::vector<std::string> out;
  for (const auto* list : {&bn.b.fwd, &bn.b.bwd})
    for (const auto& op : *list) out.push_back(op.what + ": " + op.impl);
  return out;
}

int omp_team_size() {
  int n = 0;
#pragma omp parallel
  {
#pragma omp single
    n = omp_get_num_threads();
  }
  return n;
}

}  // namespace ts
