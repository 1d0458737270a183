#include "onnx_model.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

#include "atomic_file.h"

namespace ts {

namespace {

using onnx::AttributeProto;
using onnx::NodeProto;
using onnx::TensorProto;

constexpr int kClasses = 10;
const Shape3 kInput{3, 32, 32};

[[noreturn]] void refuse(const std::string& what) { throw std::invalid_argument(what); }

// "node 'conv1' (Conv)" or "node #3 (Conv, output '7')".
std::string node_text(const NodeProto& n, int index) {
  if (!n.name().empty()) return "node '" + n.name() + "' (" + n.op_type() + ")";
  return "node #" + std::to_string(index) + " (" + n.op_type() +
         (n.output_size() ? ", output '" + n.output(0) + "'" : std::string()) + ")";
}

const AttributeProto* attribute(const NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

std::vector<int64_t> ints_of(const NodeProto& n, const std::string& name) {
  const AttributeProto* a = attribute(n, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

int64_t int_of(const NodeProto& n, const std::string& name, int64_t fallback) {
  const AttributeProto* a = attribute(n, name);
  return a ? a->i() : fallback;
}

float float_of(const NodeProto& n, const std::string& name, float fallback) {
  const AttributeProto* a = attribute(n, name);
  return a ? a->f() : fallback;
}

std::string string_of(const NodeProto& n, const std::string& name, const std::string& fallback) {
  const AttributeProto* a = attribute(n, name);
  return a ? a->s() : fallback;
}

// A constant tensor: an initializer or a Constant node's value.
struct Constant {
  std::vector<int64_t> dims;
  std::vector<float> values;  // float tensors
  std::vector<int64_t> ints;  // int64 tensors (Reshape's shape)
  bool is_float = false;
};

Constant constant_of(const TensorProto& t, const std::string& where) {
  Constant c;
  c.dims.assign(t.dims().begin(), t.dims().end());
  size_t count = 1;
  constexpr size_t kMostValues = size_t(1) << 31;
  for (int64_t d : c.dims) {
    if (d < 0 || size_t(d) > kMostValues || (d > 0 && count > kMostValues / size_t(d)))
      refuse(where + ": tensor '" + t.name() + "' has a dimension of " + std::to_string(d) +
             " or more than 2^31 values in all");
    count *= size_t(d);
  }
  if (t.data_type() == TensorProto::FLOAT) {
    c.is_float = true;
    if (!t.raw_data().empty()) {
      if (t.raw_data().size() != count * sizeof(float))
        refuse(where + ": tensor '" + t.name() + "' holds " + std::to_string(t.raw_data().size()) +
               " bytes for " + std::to_string(count) + " floats");
      c.values.resize(count);
      std::memcpy(c.values.data(), t.raw_data().data(), count * sizeof(float));
    } else {
      c.values.assign(t.float_data().begin(), t.float_data().end());
    }
    if (c.values.size() != count)
      refuse(where + ": tensor '" + t.name() + "' has " + std::to_string(c.values.size()) + " values for shape of " +
             std::to_string(count));
  } else if (t.data_type() == TensorProto::INT64) {
    if (!t.raw_data().empty()) {
      c.ints.resize(t.raw_data().size() / sizeof(int64_t));
      std::memcpy(c.ints.data(), t.raw_data().data(), c.ints.size() * sizeof(int64_t));
    } else {
      c.ints.assign(t.int64_data().begin(), t.int64_data().end());
    }
  } else {
    refuse(where + ": tensor '" + t.name() + "' is of ONNX data type " + std::to_string(t.data_type()) +
           "; float (1) weights and int64 (7) shapes are supported");
  }
  return c;
}

// What a tensor of the graph is, as the importer has mapped it so far.
struct Value {
  int layer = kNetworkInput;  // the layer whose output it is (kNetworkInput: the image)
  Shape3 shape;
  bool flat = false;          // after Flatten/Reshape: [N, C*H*W]
};

std::string sanitize(std::string s) {
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) c = '_';
  while (!s.empty() && (s.front() == '_' || s.front() == '.')) s.erase(s.begin());
  return s;
}

// Square windows and strides, and pads that are the same on H and W: pad_begin, pad_end.
struct Window {
  int kernel = 0, stride = 1, pad_begin = 0, pad_end = 0;
};

Window window_of(const NodeProto& n, const std::string& where, const std::vector<int64_t>& kernel_dims,
                 Shape3 in, const char* what) {
  Window w;
  if (kernel_dims.size() != 2) refuse(where + ": a 2-D " + std::string(what) + " is supported, this one has " +
                                      std::to_string(kernel_dims.size()) + " spatial dimensions");
  if (kernel_dims[0] != kernel_dims[1])
    refuse(where + ": its " + std::string(what) + " is " + std::to_string(kernel_dims[0]) + "x" +
           std::to_string(kernel_dims[1]) + "; square kernels are supported");
  w.kernel = int(kernel_dims[0]);
  const std::vector<int64_t> strides = ints_of(n, "strides");
  if (!strides.empty()) {
    if (strides.size() != 2 || strides[0] != strides[1])
      refuse(where + ": strides must be the same on H and W");
    w.stride = int(strides[0]);
  }
  const std::vector<int64_t> dil = ints_of(n, "dilations");
  for (int64_t d : dil)
    if (d != 1) refuse(where + ": dilation " + std::to_string(d) + "; only dilation 1 is supported");
  const std::string auto_pad = string_of(n, "auto_pad", "NOTSET");
  if (auto_pad == "VALID") return w;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    if (in.h != in.w) refuse(where + ": auto_pad SAME on a non-square input is not supported");
    const int out = (in.h + w.stride - 1) / w.stride;
    const int total = std::max((out - 1) * w.stride + w.kernel - in.h, 0);
    w.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    w.pad_end = total - w.pad_begin;
    return w;
  }
  if (auto_pad != "NOTSET") refuse(where + ": auto_pad '" + auto_pad + "' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  const std::vector<int64_t> pads = ints_of(n, "pads");
  if (!pads.empty()) {
    if (pads.size() != 4 || pads[0] != pads[1] || pads[2] != pads[3])
      refuse(where + ": pads must be the same on H and W (begin and end may differ)");
    w.pad_begin = int(pads[0]);
    w.pad_end = int(pads[2]);
  }
  return w;
}

int out_size(int in, const Window& w) { return (in + w.pad_begin + w.pad_end - w.kernel) / w.stride + 1; }

class Importer {
 public:
  Importer(const onnx::ModelProto& m, std::string source) : model_(m), source_(std::move(source)) {}

  ImportedModel run() {
    const onnx::GraphProto& g = model_.graph();
    for (const TensorProto& t : g.initializer()) constants_[t.name()] = constant_of(t, source_);
    check_input(g);
    // Constant nodes first: a pattern (GELU, MatMul + Add) reads constants of later nodes.
    for (int i = 0; i < g.node_size(); ++i)
      if (g.node(i).op_type() == "Constant") {
        map_node(i);
        done_.insert(i);
      }
    for (int i = 0; i < g.node_size(); ++i)
      for (const std::string& in : g.node(i).input()) ++readers_[in];
    for (const auto& o : g.output()) ++readers_[o.name()];
    if (g.output_size() != 1) {
      std::string names;
      for (const auto& o : g.output()) names += (names.empty() ? "'" : ", '") + o.name() + "'";
      refuse(source_ + ": the graph has " + std::to_string(g.output_size()) + " outputs (" + names +
             "); one output of 10 logits is supported");
    }
    for (int i = 0; i < g.node_size(); ++i) {
      if (done_.count(i)) continue;
      map_node(i);
    }
    const std::string& out = g.output(0).name();
    auto it = values_.find(out);
    if (it == values_.end() || layers_.empty())
      refuse(source_ + ": the graph's output '" + out + "' does not come from a supported layer");
    if (it->second.layer != int(layers_.size()) - 1)
      refuse(source_ + ": the graph's output '" + out + "' is not the last layer's: a graph ending in a "
             "branch that nothing reads is not supported");
    if (it->second.shape.size() != kClasses)
      refuse(source_ + ": the graph's output '" + out + "' has " + std::to_string(it->second.shape.size()) +
             " values per sample; 10 logits (CIFAR-10's classes) are supported");
    ImportedModel r;
    try {
      r.net = finish_network(source_, kInput, kClasses, layers_);
    } catch (const std::invalid_argument& e) {
      refuse(source_ + ": " + e.what());
    }
    r.net.init = "pytorch";
    r.params.assign(r.net.num_params, 0.f);
    for (const ParamSpec& p : r.net.params) {
      auto v = values_of_.find(p.name);
      if (v == values_of_.end()) {
        r.missing_initializers.push_back(p.name);
        continue;
      }
      if (v->second.size() != p.size)
        refuse(source_ + ": parameter " + p.name + " has " + std::to_string(v->second.size()) + " values, the layer needs " +
               std::to_string(p.size));
      std::copy(v->second.begin(), v->second.end(), r.params.begin() + std::ptrdiff_t(p.offset));
    }
    return r;
  }

 private:
  void check_input(const onnx::GraphProto& g) {
    std::vector<const onnx::ValueInfoProto*> inputs;
    for (const auto& i : g.input())
      if (!constants_.count(i.name())) inputs.push_back(&i);
    if (inputs.size() != 1)
      refuse(source_ + ": the graph has " + std::to_string(inputs.size()) +
             " inputs besides its weights; one image input of N x 3 x 32 x 32 floats is supported");
    const auto& t = inputs[0]->type().tensor_type();
    std::vector<int64_t> dims;
    for (const auto& d : t.shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    if (t.elem_type() != TensorProto::FLOAT || dims.size() != 4 || dims[1] != 3 || dims[2] != 32 || dims[3] != 32) {
      std::string shape;
      for (int64_t d : dims) shape += (shape.empty() ? "" : " x ") + (d < 0 ? std::string("?") : std::to_string(d));
      refuse(source_ + ": input '" + inputs[0]->name() + "' is " + (t.elem_type() == TensorProto::FLOAT ? "float " : "non-float ") +
             (shape.empty() ? "of unknown shape" : shape) + "; an image input of N x 3 x 32 x 32 floats (CIFAR-10) is supported");
    }
    values_[inputs[0]->name()] = Value{kNetworkInput, kInput, false};
  }

  const Value& value(const NodeProto& n, int index, int input) {
    if (input >= n.input_size())
      refuse(source_ + ": " + node_text(n, index) + " has " + std::to_string(n.input_size()) + " inputs; it needs " +
             std::to_string(input + 1) + " or more");
    const std::string& name = n.input(input);
    auto it = values_.find(name);
    if (it == values_.end())
      refuse(source_ + ": " + node_text(n, index) + " reads '" + name + "', which is not an output of a supported layer" +
             (constants_.count(name) ? " (it is a constant)" : ""));
    return it->second;
  }

  const Constant* constant(const std::string& name) const {
    auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : &it->second;
  }

  // The scalar value of a constant input, or NaN when the input is not a scalar constant.
  float scalar(const std::string& name) const {
    const Constant* c = constant(name);
    if (!c || !c->is_float || c->values.size() != 1) return NAN;
    return c->values[0];
  }

  // The nodes reading tensor `name` (index order).
  std::vector<int> readers_of(const std::string& name) const {
    std::vector<int> out;
    const auto& g = model_.graph();
    for (int i = 0; i < g.node_size(); ++i)
      for (const std::string& in : g.node(i).input())
        if (in == name) {
          out.push_back(i);
          break;
        }
    return out;
  }

  // The only node reading `name` when it has exactly one reader and that reader is `op`, else -1.
  int sole_reader(const std::string& name, const char* op) const {
    auto it = readers_.find(name);
    if (it == readers_.end() || it->second != 1) return -1;
    const std::vector<int> r = readers_of(name);
    if (r.size() != 1) return -1;
    const NodeProto& n = model_.graph().node(r[0]);
    // The patterns read one output of a node of one input (Relu, Erf) or two (Add, Mul).
    const int want_inputs = n.op_type() == "Add" || n.op_type() == "Mul" ? 2 : 1;
    if (n.op_type() != op || n.output_size() < 1 || n.input_size() != want_inputs) return -1;
    return r[0];
  }

  std::string unique_name(const std::string& wanted, const std::string& fallback) {
    std::string n = sanitize(wanted);
    if (n.empty()) n = fallback;
    std::string out = n;
    for (int k = 2; names_.count(out); ++k) out = n + "_" + std::to_string(k);
    names_.insert(out);
    return out;
  }

  // The layer name from a weight initializer "conv1.weight" -> "conv1", else the node's name.
  std::string layer_name(const NodeProto& n, int index, const std::string& weight) {
    static const std::string kSuffix = ".weight";
    if (weight.size() > kSuffix.size() && weight.compare(weight.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0)
      return unique_name(weight.substr(0, weight.size() - kSuffix.size()), "layer" + std::to_string(index));
    std::string lower = n.op_type();
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    // torch.onnx names nodes "/<module path>/<Op>": the module path is the layer's name.
    std::string name = n.name();
    const std::string tail = "/" + n.op_type();
    if (name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0)
      name.erase(name.size() - tail.size());
    while (!name.empty() && name.front() == '/') name.erase(name.begin());
    std::replace(name.begin(), name.end(), '/', '.');
    return unique_name(name, lower + std::to_string(index));
  }

  // Appends a layer reading `from`; its output becomes tensor `out`.
  int add_layer(LayerSpec l, const Value& from, const std::string& out, Shape3 shape, bool flat = false) {
    if (from.layer != int(layers_.size()) - 1 || l.kind == LayerKind::kAdd) {
      if (l.inputs.empty()) l.inputs = {from.layer};
    }
    layers_.push_back(std::move(l));
    values_[out] = Value{int(layers_.size()) - 1, shape, flat};
    return int(layers_.size()) - 1;
  }

  // A Relu that is the only reader of `out` is fused: returns the tensor the layer's output
  // now is (the Relu's), and marks the Relu done.
  std::string fuse_relu(const std::string& out, bool* relu) {
    const int r = sole_reader(out, "Relu");
    if (r < 0) return out;
    *relu = true;
    done_.insert(r);
    return model_.graph().node(r).output(0);
  }

  void set_param(const std::string& name, std::vector<float> v) { values_of_[name] = std::move(v); }

  void map_node(int i) {
    const NodeProto& n = model_.graph().node(i);
    const std::string where = source_ + ": " + node_text(n, i);
    const std::string& op = n.op_type();
    if (n.output_size() < 1) refuse(where + " has no output");
    if (op == "Constant") {
      const AttributeProto* a = attribute(n, "value");
      if (!a || !a->has_t()) refuse(where + ": a Constant with a tensor 'value' is supported");
      constants_[n.output(0)] = constant_of(a->t(), where);
      return;
    }
    if (op == "Transpose" && n.input_size() == 1 && constant(n.input(0))) {
      // torch.onnx writes a Linear without bias as Transpose(weight) -> MatMul.
      const Constant& c = *constant(n.input(0));
      const std::vector<int64_t> perm = ints_of(n, "perm");
      if (!c.is_float || c.dims.size() != 2 || !(perm.empty() || perm == std::vector<int64_t>{1, 0}))
        refuse(where + ": a Transpose of a 2-D float constant (a dense layer's weight) is supported");
      Constant t;
      t.is_float = true;
      t.dims = {c.dims[1], c.dims[0]};
      t.values = transposed(c.values, c.dims[0], c.dims[1]);
      constants_[n.output(0)] = std::move(t);
      return;
    }
    if (op == "Shape" || op == "Gather" || op == "Unsqueeze" || op == "Concat") return shape_arithmetic(n, i, where);
    if (op == "Identity" || op == "Dropout") {
      values_[n.output(0)] = value(n, i, 0);
      return;
    }
    if (op == "Conv") return conv(n, i, where);
    if (op == "Relu") return elementwise(n, i, LayerKind::kRelu);
    if (op == "MaxPool" || op == "AveragePool") return pool(n, i, where);
    if (op == "GlobalAveragePool") {
      const Value& v = value(n, i, 0);
      if (v.flat) refuse(where + ": global pooling of a flattened tensor is not supported");
      LayerSpec l;
      l.kind = LayerKind::kGlobalAvgPool;
      l.name = layer_name(n, i, "");
      add_layer(l, v, n.output(0), {v.shape.c, 1, 1});
      return;
    }
    if (op == "BatchNormalization") return batchnorm(n, i, where);
    if (op == "LRN") return lrn(n, i, where);
    if (op == "Flatten" || op == "Reshape") return flatten(n, i, where);
    if (op == "Gemm") return gemm(n, i, where);
    if (op == "MatMul") return matmul(n, i, where);
    if (op == "Div") return gelu(n, i, where);
    if (op == "Gelu") {  // opset 20's own op, exact form only
      if (string_of(n, "approximate", "none") != "none")
        refuse(where + ": approximate='" + string_of(n, "approximate", "") + "'; the exact (erf) GELU is supported");
      return elementwise(n, i, LayerKind::kGelu);
    }
    if (op == "Mul") return mul(n, i, where);
    if (op == "Add") return add(n, i, where);
    refuse(where + ": the op " + op + " is not supported (supported: Conv, Relu, the GELU subgraph, MaxPool, "
           "AveragePool, GlobalAveragePool, BatchNormalization, LRN, Flatten, Reshape, Gemm, MatMul + Add, "
           "Mul by a constant, Add of two branches, Gelu, Identity, Dropout, Constant, Transpose of a weight)");
  }

  // torch writes x.view(x.size(0), -1) as Shape -> Gather 0 -> Unsqueeze, Concat with -1 ->
  // Reshape: worked out here on int64 constants, the batch dimension as 0 (Reshape's "copy").
  void shape_arithmetic(const NodeProto& n, int i, const std::string& where) {
    const std::string& op = n.op_type();
    const std::string only = where + ": " + op + " is supported only in the arithmetic of a Reshape's shape "
                             "(torch's x.view(x.size(0), -1))";
    Constant out;
    if (op == "Shape") {
      if (n.input_size() != 1 || attribute(n, "start") || attribute(n, "end")) refuse(only);
      const Value& v = value(n, i, 0);
      out.ints = v.flat ? std::vector<int64_t>{0, v.shape.size()} : std::vector<int64_t>{0, v.shape.c, v.shape.h, v.shape.w};
    } else {
      std::vector<const Constant*> ins;
      for (const std::string& name : n.input()) {
        const Constant* c = constant(name);
        if (!c || c->is_float) refuse(only);
        ins.push_back(c);
      }
      if (ins.empty()) refuse(only);
      if (op == "Gather") {
        if (ins.size() != 2 || int_of(n, "axis", 0) != 0 || ins[1]->ints.size() != 1) refuse(only);
        const int64_t k = ins[1]->ints[0] < 0 ? ins[1]->ints[0] + int64_t(ins[0]->ints.size()) : ins[1]->ints[0];
        if (k < 0 || k >= int64_t(ins[0]->ints.size())) refuse(where + ": index " + std::to_string(ins[1]->ints[0]) + " is out of range");
        out.ints = {ins[0]->ints[size_t(k)]};
      } else if (op == "Unsqueeze") {
        out.ints = ins[0]->ints;
      } else {  // Concat
        if (int_of(n, "axis", 0) != 0) refuse(only);
        for (const Constant* c : ins) out.ints.insert(out.ints.end(), c->ints.begin(), c->ints.end());
      }
    }
    out.dims = {int64_t(out.ints.size())};
    constants_[n.output(0)] = std::move(out);
  }

  // A layer of one input and its shape (relu, gelu).
  void elementwise(const NodeProto& n, int i, LayerKind kind) {
    const Value& v = value(n, i, 0);
    LayerSpec l;
    l.kind = kind;
    l.name = layer_name(n, i, "");
    add_layer(l, v, n.output(0), v.shape, v.flat);
  }

  void conv(const NodeProto& n, int i, const std::string& where) {
    const Value& v = value(n, i, 0);
    if (v.flat) refuse(where + ": a convolution of a flattened tensor is not supported");
    const Constant* w = n.input_size() > 1 ? constant(n.input(1)) : nullptr;
    if (!w || !w->is_float || w->dims.size() != 4)
      refuse(where + ": its weight must be a 4-D float initializer [out, in, kh, kw]");
    if (int_of(n, "group", 1) != 1) refuse(where + ": group " + std::to_string(int_of(n, "group", 1)) + "; only group 1 is supported");
    if (w->dims[1] != v.shape.c)
      refuse(where + ": its weight expects " + std::to_string(w->dims[1]) + " input channels, the input has " +
             std::to_string(v.shape.c));
    std::vector<int64_t> k = ints_of(n, "kernel_shape");
    if (k.empty()) k = {w->dims[2], w->dims[3]};
    if (k.size() != 2 || k[0] != w->dims[2] || k[1] != w->dims[3])
      refuse(where + ": kernel_shape disagrees with its weight's shape");
    const Window win = window_of(n, where, k, v.shape, "kernel");
    LayerSpec l;
    l.kind = LayerKind::kConv;
    l.name = layer_name(n, i, n.input(1));
    l.out_channels = int(w->dims[0]);
    l.kernel = win.kernel;
    l.stride = win.stride;
    l.pad_begin = win.pad_begin;
    l.pad_end = win.pad_end;
    l.bias = n.input_size() > 2 && !n.input(2).empty();
    set_param(l.name + ".weight", w->values);
    if (l.bias) {
      const Constant* b = constant(n.input(2));
      if (!b || !b->is_float || b->values.size() != size_t(l.out_channels))
        refuse(where + ": its bias must be a float initializer of " + std::to_string(l.out_channels) + " values");
      set_param(l.name + ".bias", b->values);
    }
    const Shape3 out{l.out_channels, out_size(v.shape.h, win), out_size(v.shape.w, win)};
    if (out.h <= 0 || out.w <= 0) refuse(where + ": its output would be empty");
    const std::string tensor = fuse_relu(n.output(0), &l.relu);
    add_layer(l, v, tensor, out);
  }

  void pool(const NodeProto& n, int i, const std::string& where) {
    const Value& v = value(n, i, 0);
    if (v.flat) refuse(where + ": pooling a flattened tensor is not supported");
    if (int_of(n, "ceil_mode", 0) != 0) refuse(where + ": ceil_mode 1; only ceil_mode 0 (floor) is supported");
    if (n.output_size() > 1 && !n.output(1).empty()) refuse(where + ": its Indices output is not supported");
    if (int_of(n, "storage_order", 0) != 0) refuse(where + ": storage_order 1 is not supported");
    const Window win = window_of(n, where, ints_of(n, "kernel_shape"), v.shape, "window");
    LayerSpec l;
    l.kind = n.op_type() == "MaxPool" ? LayerKind::kMaxPool : LayerKind::kAvgPool;
    l.name = layer_name(n, i, "");
    l.kernel = win.kernel;
    l.stride = win.stride;
    l.pad_begin = win.pad_begin;
    l.pad_end = win.pad_end;
    l.avg_include_pad = int_of(n, "count_include_pad", 0) != 0;
    if (win.pad_begin >= win.kernel || win.pad_end >= win.kernel) refuse(where + ": padding as large as the window");
    const Shape3 out{v.shape.c, out_size(v.shape.h, win), out_size(v.shape.w, win)};
    if (out.h <= 0 || out.w <= 0) refuse(where + ": its output would be empty");
    add_layer(l, v, n.output(0), out);
  }

  void batchnorm(const NodeProto& n, int i, const std::string& where) {
    const Value& v = value(n, i, 0);
    if (v.flat) refuse(where + ": batch norm of a flattened tensor is not supported");
    if (int_of(n, "training_mode", 0) != 0 || n.output_size() > 1)
      refuse(where + ": a training-mode BatchNormalization is not supported; export in eval mode (model.eval())");
    const size_t C = size_t(v.shape.c);
    std::vector<const Constant*> t;
    for (int k = 1; k <= 4; ++k) {
      const Constant* c = n.input_size() > k ? constant(n.input(k)) : nullptr;
      if (!c || !c->is_float || c->values.size() != C)
        refuse(where + ": its scale, bias, mean and variance must be float initializers of " + std::to_string(C) + " values");
      t.push_back(c);
    }
    LayerSpec l;
    l.kind = LayerKind::kBatchNorm;
    l.name = layer_name(n, i, n.input(1));
    l.bn_scale = true;
    l.bn_group = kImportedBnGroup;
    l.bn_eps = float_of(n, "epsilon", 1e-5f);
    l.bn_momentum = 1.f - float_of(n, "momentum", 0.9f);  // ONNX's m keeps m of the old value
    if (!(l.bn_momentum > 0 && l.bn_momentum <= 1)) refuse(where + ": momentum must be in [0, 1)");
    set_param(l.name + ".weight", t[0]->values);
    set_param(l.name + ".bias", t[1]->values);
    set_param(l.name + ".running_mean", t[2]->values);
    set_param(l.name + ".running_var", t[3]->values);
    add_layer(l, v, n.output(0), v.shape);
  }

  void lrn(const NodeProto& n, int i, const std::string& where) {
    const Value& v = value(n, i, 0);
    if (v.flat) refuse(where + ": LRN of a flattened tensor is not supported");
    LayerSpec l;
    l.kind = LayerKind::kLrn;
    l.name = layer_name(n, i, "");
    l.lrn_size = int(int_of(n, "size", 0));
    if (l.lrn_size <= 0 || l.lrn_size % 2 == 0) refuse(where + ": size " + std::to_string(l.lrn_size) + "; an odd size is supported");
    // ONNX's y = x / (bias + alpha / size * sum x^2)^beta is oneDNN's convention (network.h).
    l.lrn_alpha = float_of(n, "alpha", 1e-4f);
    l.lrn_beta = float_of(n, "beta", 0.75f);
    l.lrn_k = float_of(n, "bias", 1.f);
    add_layer(l, v, n.output(0), v.shape);
  }

  void flatten(const NodeProto& n, int i, const std::string& where) {
    const Value& v = value(n, i, 0);
    if (n.op_type() == "Flatten") {
      if (int_of(n, "axis", 1) != 1) refuse(where + ": axis " + std::to_string(int_of(n, "axis", 1)) + "; Flatten(axis=1) is supported");
    } else {
      const Constant* s = n.input_size() > 1 ? constant(n.input(1)) : nullptr;
      const int64_t size = v.shape.size();
      const bool ok = s && s->ints.size() == 2 && (s->ints[0] == -1 || s->ints[0] == 0 || s->ints[0] > 0) &&
                      (s->ints[1] == -1 || s->ints[1] == size) && !(s->ints[0] == -1 && s->ints[1] == -1);
      if (!ok) refuse(where + ": Reshape to [N, " + std::to_string(size) + "] (or [N, -1]) before a dense layer is supported");
    }
    Value f = v;
    f.flat = true;
    values_[n.output(0)] = f;
  }

  // A dense layer of `in` reading v, weight [out, in] row-major, optional bias.
  void dense(const NodeProto& n, int i, const std::string& where, const Value& v, const std::string& weight_name,
             std::vector<float> w, int out, const Constant* bias, const std::string& out_tensor) {
    const int64_t in = v.shape.size();
    if (int64_t(w.size()) != in * out)
      refuse(where + ": its weight has " + std::to_string(w.size()) + " values; a dense layer of " + std::to_string(in) +
             " inputs and " + std::to_string(out) + " outputs needs " + std::to_string(in * out));
    LayerSpec l;
    l.kind = LayerKind::kDense;
    l.name = layer_name(n, i, weight_name);
    l.out_channels = out;
    l.bias = bias != nullptr;
    set_param(l.name + ".weight", std::move(w));
    if (bias) {
      if (!bias->is_float || bias->values.size() != size_t(out))
        refuse(where + ": its bias must be a float constant of " + std::to_string(out) + " values");
      set_param(l.name + ".bias", bias->values);
    }
    const std::string tensor = fuse_relu(out_tensor, &l.relu);
    add_layer(l, v, tensor, {out, 1, 1}, true);
  }

  static std::vector<float> transposed(const std::vector<float>& w, int64_t rows, int64_t cols) {
    std::vector<float> t(w.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) t[size_t(c * rows + r)] = w[size_t(r * cols + c)];
    return t;
  }

  void gemm(const NodeProto& n, int i, const std::string& where) {
    const Value& v = value(n, i, 0);
    if (!v.flat && !(v.shape.h == 1 && v.shape.w == 1))
      refuse(where + ": its input is 4-D; Flatten it first (a dense layer reads [N, C*H*W])");
    if (int_of(n, "transA", 0) != 0) refuse(where + ": transA 1 is not supported (the batch is the first dimension)");
    if (float_of(n, "alpha", 1.f) != 1.f || float_of(n, "beta", 1.f) != 1.f)
      refuse(where + ": alpha and beta other than 1 are not supported");
    const Constant* w = n.input_size() > 1 ? constant(n.input(1)) : nullptr;
    if (!w || !w->is_float || w->dims.size() != 2) refuse(where + ": its B must be a 2-D float initializer");
    const bool trans_b = int_of(n, "transB", 0) != 0;
    const int64_t out = trans_b ? w->dims[0] : w->dims[1];
    const int64_t in = trans_b ? w->dims[1] : w->dims[0];
    std::vector<float> wv = trans_b ? w->values : transposed(w->values, in, out);
    const Constant* bias = n.input_size() > 2 && !n.input(2).empty() ? constant(n.input(2)) : nullptr;
    if (n.input_size() > 2 && !n.input(2).empty() && !bias) refuse(where + ": its C must be a constant bias");
    dense(n, i, where, v, n.input(1), std::move(wv), int(out), bias, n.output(0));
  }

  void matmul(const NodeProto& n, int i, const std::string& where) {
    const Value& v = value(n, i, 0);
    if (!v.flat && !(v.shape.h == 1 && v.shape.w == 1))
      refuse(where + ": its input is 4-D; Flatten it first (a dense layer reads [N, C*H*W])");
    const Constant* w = n.input_size() > 1 ? constant(n.input(1)) : nullptr;
    if (!w || !w->is_float || w->dims.size() != 2) refuse(where + ": its second input must be a 2-D float initializer [in, out]");
    const int64_t in = w->dims[0], out = w->dims[1];
    // MatMul + Add of a constant bias: one dense layer.
    const Constant* bias = nullptr;
    std::string tensor = n.output(0);
    const int a = sole_reader(n.output(0), "Add");
    if (a >= 0) {
      const NodeProto& add_node = model_.graph().node(a);
      const std::string other = add_node.input(0) == n.output(0) ? add_node.input(1) : add_node.input(0);
      if (constant(other)) {
        bias = constant(other);
        tensor = add_node.output(0);
        done_.insert(a);
      }
    }
    dense(n, i, where, v, n.input(1), transposed(w->values, in, out), int(out), bias, tensor);
  }

  // PyTorch 1.13's nn.GELU: Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5 (the two Muls'
  // operands in either order).
  void gelu(const NodeProto& n, int i, const std::string& where) {
    const Value& x = value(n, i, 0);
    const std::string not_gelu = where + ": a Div is supported only as the start of the GELU subgraph PyTorch exports "
                                 "(x * 0.5 * (1 + erf(x / sqrt 2)))";
    if (n.input_size() != 2 || std::fabs(scalar(n.input(1)) - std::sqrt(2.f)) > 1e-5f) refuse(not_gelu);
    const auto& g = model_.graph();
    const int e = sole_reader(n.output(0), "Erf");
    if (e < 0) refuse(not_gelu);
    const int a = sole_reader(g.node(e).output(0), "Add");
    if (a < 0) refuse(not_gelu);
    const NodeProto& an = g.node(a);
    const std::string one = an.input(0) == g.node(e).output(0) ? an.input(1) : an.input(0);
    if (scalar(one) != 1.f) refuse(not_gelu);
    const int m1 = sole_reader(an.output(0), "Mul");
    if (m1 < 0) refuse(not_gelu);
    const NodeProto& m1n = g.node(m1);
    const std::string f1 = m1n.input(0) == an.output(0) ? m1n.input(1) : m1n.input(0);
    const int m2 = sole_reader(m1n.output(0), "Mul");
    if (m2 < 0) refuse(not_gelu);
    const NodeProto& m2n = g.node(m2);
    const std::string f2 = m2n.input(0) == m1n.output(0) ? m2n.input(1) : m2n.input(0);
    const bool ok = (f1 == n.input(0) && scalar(f2) == 0.5f) || (scalar(f1) == 0.5f && f2 == n.input(0));
    if (!ok) refuse(not_gelu);
    done_.insert({e, a, m1, m2});
    LayerSpec l;
    l.kind = LayerKind::kGelu;
    l.name = layer_name(n, i, "");
    add_layer(l, x, m2n.output(0), x.shape, x.flat);
  }

  void mul(const NodeProto& n, int i, const std::string& where) {
    if (n.input_size() != 2) refuse(where + ": a Mul of two inputs is supported");
    const int which = !std::isnan(scalar(n.input(1))) ? 0 : !std::isnan(scalar(n.input(0))) ? 1 : -1;
    if (which < 0) refuse(where + ": a Mul by a scalar constant is supported (not of two tensors)");
    const Value& v = value(n, i, which);
    LayerSpec l;
    l.kind = LayerKind::kScale;
    l.name = layer_name(n, i, "");
    l.scale = scalar(n.input(1 - which));
    add_layer(l, v, n.output(0), v.shape, v.flat);
  }

  void add(const NodeProto& n, int i, const std::string& where) {
    if (n.input_size() != 2) refuse(where + ": an Add of two inputs is supported");
    if (constant(n.input(0)) || constant(n.input(1)))
      refuse(where + ": an Add of a constant is supported only as a MatMul's bias or inside the GELU subgraph");
    const Value a = value(n, i, 0), b = value(n, i, 1);
    if (a.flat != b.flat || !(a.shape == b.shape))
      refuse(where + ": adds tensors of different shapes; an Add of two branches of one shape is supported");
    LayerSpec l;
    l.kind = LayerKind::kAdd;
    l.name = layer_name(n, i, "");
    l.inputs = {a.layer, b.layer};
    const std::string tensor = fuse_relu(n.output(0), &l.relu);
    add_layer(l, a, tensor, a.shape, a.flat);
  }

  const onnx::ModelProto& model_;
  std::string source_;
  std::map<std::string, Constant> constants_;
  std::map<std::string, Value> values_;
  std::map<std::string, int> readers_;
  std::map<std::string, std::vector<float>> values_of_;  // parameter name -> values
  std::set<int> done_;
  std::set<std::string> names_;
  std::vector<LayerSpec> layers_;
};

// Export helpers.
class Exporter {
 public:
  Exporter(const NetworkSpec& net, const float* params) : net_(net), params_(params) {}

  std::string run() {
    onnx::ModelProto m;
    m.set_ir_version(7);
    m.set_producer_name("threadsplit");
    m.add_opset_import()->set_version(13);
    g_ = m.mutable_graph();
    g_->set_name(net_.name);
    auto* in = g_->add_input();
    in->set_name("input");
    set_type(in, {-1, kInput.c, kInput.h, kInput.w});
    for (const ParamSpec& p : net_.params) add_initializer(p.name, p.shape, params_ + p.offset);
    std::vector<std::string> outs(net_.layers.size());
    for (size_t i = 0; i < net_.layers.size(); ++i) {
      const LayerSpec& l = net_.layers[i];
      std::vector<std::string> ins;
      for (int j : layer_inputs(net_, i)) ins.push_back(j == kNetworkInput ? "input" : outs[size_t(j)]);
      outs[i] = layer(l, ins);
    }
    // The logits under a name of their own.
    node("Identity", {outs.back()}, "logits", "logits_out");
    auto* out = g_->add_output();
    out->set_name("logits");
    set_type(out, {-1, int64_t(net_.num_classes)});
    return m.SerializeAsString();
  }

 private:
  static void set_type(onnx::ValueInfoProto* v, const std::vector<int64_t>& dims) {
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(TensorProto::FLOAT);
    for (int64_t d : dims) {
      auto* dim = t->mutable_shape()->add_dim();
      if (d < 0) dim->set_dim_param("N");
      else dim->set_dim_value(d);
    }
  }

  void add_initializer(const std::string& name, const std::vector<int64_t>& dims, const float* values) {
    TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(TensorProto::FLOAT);
    size_t count = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      count *= size_t(d);
    }
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values), count * sizeof(float)));
  }

  std::string scalar(const std::string& name, float v) {
    add_initializer(name, {}, &v);
    return name;
  }

  NodeProto* node(const std::string& op, const std::vector<std::string>& ins, const std::string& out,
                  const std::string& name) {
    NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& s : ins) n->add_input(s);
    n->add_output(out);
    return n;
  }

  static void ints(NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void integer(NodeProto* n, const std::string& name, int64_t v) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INT);
    a->set_i(v);
  }
  static void real(NodeProto* n, const std::string& name, float v) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::FLOAT);
    a->set_f(v);
  }

  // The ReLU after a layer that fuses one.
  std::string relu_after(const LayerSpec& l, const std::string& out) {
    if (!l.relu) return out;
    node("Relu", {out}, out + "_relu", l.name + "_relu");
    return out + "_relu";
  }

  std::string layer(const LayerSpec& l, const std::vector<std::string>& ins) {
    const std::string out = l.name;
    const std::vector<int64_t> pads = {l.pad_begin, l.pad_begin, l.pad_end, l.pad_end};
    switch (l.kind) {
      case LayerKind::kConv: {
        std::vector<std::string> args = {ins[0], net_.params[size_t(l.weight_param)].name};
        if (l.bias_param >= 0) args.push_back(net_.params[size_t(l.bias_param)].name);
        NodeProto* n = node("Conv", args, out, l.name);
        ints(n, "kernel_shape", {l.kernel, l.kernel});
        ints(n, "strides", {l.stride, l.stride});
        ints(n, "pads", pads);
        return relu_after(l, out);
      }
      case LayerKind::kMaxPool:
      case LayerKind::kAvgPool: {
        NodeProto* n = node(l.kind == LayerKind::kMaxPool ? "MaxPool" : "AveragePool", {ins[0]}, out, l.name);
        ints(n, "kernel_shape", {l.kernel, l.kernel});
        ints(n, "strides", {l.stride, l.stride});
        ints(n, "pads", pads);
        if (l.kind == LayerKind::kAvgPool) integer(n, "count_include_pad", l.avg_include_pad ? 1 : 0);
        return out;
      }
      case LayerKind::kGlobalAvgPool:
        node("GlobalAveragePool", {ins[0]}, out, l.name);
        return out;
      case LayerKind::kLrn: {
        NodeProto* n = node("LRN", {ins[0]}, out, l.name);
        integer(n, "size", l.lrn_size);
        real(n, "alpha", l.lrn_alpha);
        real(n, "beta", l.lrn_beta);
        real(n, "bias", l.lrn_k);
        return out;
      }
      case LayerKind::kDense: {
        std::string x = ins[0];
        if (!(l.in.h == 1 && l.in.w == 1 && flat_.count(x))) {
          node("Flatten", {x}, out + "_flat", l.name + "_flatten");
          x = out + "_flat";
        }
        std::vector<std::string> args = {x, net_.params[size_t(l.weight_param)].name};
        if (l.bias_param >= 0) args.push_back(net_.params[size_t(l.bias_param)].name);
        NodeProto* n = node("Gemm", args, out, l.name);
        integer(n, "transB", 1);
        const std::string r = relu_after(l, out);
        flat_.insert(r);
        return r;
      }
      case LayerKind::kBatchNorm: {
        std::string scale_name;
        if (l.weight_param >= 0) {
          scale_name = net_.params[size_t(l.weight_param)].name;
        } else {
          // Scale fixed at 1 (network.h): a constant of ones.
          const std::vector<float> ones(size_t(l.in.c), 1.f);
          scale_name = l.name + ".scale_fixed";
          add_initializer(scale_name, {l.in.c}, ones.data());
        }
        const size_t b = size_t(l.bias_param);
        NodeProto* n = node("BatchNormalization",
                            {ins[0], scale_name, net_.params[b].name, net_.params[b + 1].name, net_.params[b + 2].name},
                            out, l.name);
        real(n, "epsilon", l.bn_eps);
        real(n, "momentum", 1.f - l.bn_momentum);
        return out;
      }
      case LayerKind::kGelu: {
        const std::string p = l.name + "_gelu";
        node("Div", {ins[0], scalar(p + ".sqrt2", std::sqrt(2.f))}, p + "_div", p + "_div");
        node("Erf", {p + "_div"}, p + "_erf", p + "_erf");
        node("Add", {p + "_erf", scalar(p + ".one", 1.f)}, p + "_add", p + "_add");
        node("Mul", {ins[0], p + "_add"}, p + "_mul", p + "_mul");
        node("Mul", {p + "_mul", scalar(p + ".half", 0.5f)}, out, l.name);
        if (flat_.count(ins[0])) flat_.insert(out);
        return out;
      }
      case LayerKind::kScale:
        node("Mul", {ins[0], scalar(l.name + ".factor", l.scale)}, out, l.name);
        if (flat_.count(ins[0])) flat_.insert(out);
        return out;
      case LayerKind::kRelu:
        node("Relu", {ins[0]}, out, l.name);
        if (flat_.count(ins[0])) flat_.insert(out);
        return out;
      case LayerKind::kAdd:
        node("Add", {ins[0], ins[1]}, out, l.name);
        return relu_after(l, out);
    }
    throw std::logic_error("unknown layer kind");
  }

  const NetworkSpec& net_;
  const float* params_;
  onnx::GraphProto* g_ = nullptr;
  std::set<std::string> flat_;  // tensors that are [N, features]
};

}  // namespace

ImportedModel import_onnx(const std::string& bytes, const std::string& source) {
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes))
    throw std::invalid_argument(source + " is not an ONNX model (it does not parse as onnx.ModelProto)");
  if (!m.has_graph() || m.graph().node_size() == 0) throw std::invalid_argument(source + " has no graph");
  return Importer(m, source).run();
}

std::string export_onnx_bytes(const NetworkSpec& net, const float* params) { return Exporter(net, params).run(); }

void export_onnx(const NetworkSpec& net, const float* params, const std::string& path) {
  write_file_atomically(path, export_onnx_bytes(net, params));
}

}  // namespace ts
