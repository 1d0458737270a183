// kAdd: the sum of two activations of one shape (a residual connection), optionally followed
// by a fused ReLU. Forward: oneDNN's binary add in the first input's layout (the second is
// reordered to it when they differ). Backward: the gradient of both inputs is the output's
// gradient (after the ReLU mask); the model sums the gradients of an output read twice.
#include <stdexcept>

#include "net_builder.h"

namespace ts {
namespace {

class AddLayer : public Layer {
 public:
  explicit AddLayer(const LayerSpec& spec) : spec_(spec) {}

  void set_second_input(const memory& src) override { second_ = src; }

  memory build_forward(NetBuilder& b, const memory& src) override {
    if (!second_) throw std::logic_error(spec_.name + ": an add layer needs its second input");
    const memory other = b.convert(second_, src.get_desc(), b.fwd, spec_.name + " second input reorder");
    dnnl::binary::desc d(dnnl::algorithm::binary_add, src.get_desc(), other.get_desc(), src.get_desc());
    dnnl::binary::primitive_desc pd(d, fused_relu_attr(spec_.relu), b.eng);
    dst_ = memory(pd.dst_desc(), b.eng);
    b.add(b.fwd, dnnl::binary(pd), {{DNNL_ARG_SRC_0, src}, {DNNL_ARG_SRC_1, other}, {DNNL_ARG_DST, dst_}},
          spec_.name + " fwd", pd);
    return dst_;
  }

  memory build_backward(NetBuilder& b, const memory& diff_dst, bool need_diff_src) override {
    if (!need_diff_src) return memory();  // no parameters
    if (spec_.relu) return relu_backward_in_place(b, dst_, diff_dst, spec_.name + " relu bwd");
    return diff_dst;
  }

 private:
  LayerSpec spec_;
  memory second_, dst_;
};

}  // namespace

std::unique_ptr<Layer> make_add_layer(const NetworkSpec&, const LayerSpec& spec) {
  return std::make_unique<AddLayer>(spec);
}

}  // namespace ts
