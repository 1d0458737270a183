// ONNX in and out (common/onnx_model.h): the built-in nets written as ONNX read back as the
// same description and parameters, and compute the same logits; every kind of graph the
// importer cannot map exactly is refused in one sentence naming the node. Tag [onnx].
#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <functional>
#include <string>

#include "model.h"
#include "model_source.h"
#include "network.h"
#include "onnx_model.h"
#include "random.h"

using ts::LayerKind;

namespace {

std::vector<float> params_for(const ts::NetworkSpec& net, uint64_t seed) {
  std::vector<float> p(net.num_params);
  ts::init_params(net, seed, p.data());
  ts::Rng rng(seed + 3);
  for (const auto& ps : net.params)  // non-trivial biases, shifts and running statistics
    if (ps.role != ts::ParamSpec::Role::kWeight)
      for (size_t i = 0; i < ps.size; ++i) p[ps.offset + i] += float(0.1 * rng.uniform());
  return p;
}

std::vector<float> logits(const ts::NetworkSpec& net, const std::vector<float>& params, bool training) {
  const int n = 64;
  ts::Rng rng(17);
  std::vector<float> images(size_t(n) * net.input.size());
  for (auto& x : images) x = float(rng.uniform() - 0.5);
  std::vector<int32_t> labels(size_t(n), 1);
  ts::Model m(net, n);
  m.set_params(params.data());
  if (training) {
    std::vector<float> grad(net.num_params);
    m.train_step(images.data(), labels.data(), n, 1.f / n, grad.data());
  } else {
    m.evaluate(images.data(), labels.data(), n);
  }
  return m.last_logits();
}

onnx::ModelProto exported(const std::string& name) {
  const ts::NetworkSpec net = ts::build_network(name);
  const auto p = params_for(net, 1);
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(ts::export_onnx_bytes(net, p.data())));
  return m;
}

std::string refusal(const onnx::ModelProto& m) {
  try {
    ts::import_onnx(m.SerializeAsString(), "m.onnx");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

onnx::NodeProto* first(onnx::ModelProto& m, const std::string& op) {
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == op) return &n;
  FAIL("no " << op << " node");
  return nullptr;
}

onnx::AttributeProto* attr(onnx::NodeProto* n, const std::string& name) {
  for (auto& a : *n->mutable_attribute())
    if (a.name() == name) return &a;
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  return a;
}

}  // namespace

TEST_CASE("the built-in chains written as ONNX read back as themselves, bit for bit", "[onnx]") {
  for (const char* name : {"seed_cnn", "tf_tutorial_cnn"}) {
    INFO(name);
    const ts::NetworkSpec net = ts::build_network(name);
    const auto p = params_for(net, 4);
    const ts::ImportedModel back = ts::import_onnx(ts::export_onnx_bytes(net, p.data()), name);
    REQUIRE(back.net.layers.size() == net.layers.size());
    for (size_t i = 0; i < net.layers.size(); ++i) {
      const auto &a = net.layers[i], &b = back.net.layers[i];
      INFO(a.name);
      CHECK(b.name == a.name);
      CHECK(b.kind == a.kind);
      CHECK(b.in == a.in);
      CHECK(b.out == a.out);
      CHECK(b.relu == a.relu);
      CHECK(b.kernel == a.kernel);
      CHECK(b.stride == a.stride);
      CHECK(b.pad_begin == a.pad_begin);
      CHECK(b.pad_end == a.pad_end);
      CHECK(b.inputs.empty());
      CHECK(b.lrn_alpha == a.lrn_alpha);
    }
    REQUIRE(back.net.num_params == net.num_params);
    for (size_t k = 0; k < net.params.size(); ++k) {
      CHECK(back.net.params[k].name == net.params[k].name);
      CHECK(back.net.params[k].offset == net.params[k].offset);
    }
    CHECK(back.params == p);
    CHECK(back.missing_initializers.empty());
    CHECK(logits(back.net, back.params, true) == logits(net, p, true));
  }
}

TEST_CASE("airbench94 written as ONNX reads back with a trained batch-norm scale and the same logits", "[onnx]") {
  const ts::NetworkSpec net = ts::build_network("airbench94");
  const auto p = params_for(net, 2);
  const ts::ImportedModel back = ts::import_onnx(ts::export_onnx_bytes(net, p.data()), "airbench94.onnx");
  int norms = 0;
  for (const auto& l : back.net.layers)
    if (l.kind == LayerKind::kBatchNorm) {
      CHECK(l.bn_scale);  // PyTorch's affine batch norm: the scale (1 here) trains from now on
      CHECK(l.bn_eps == 1e-12f);
      CHECK(l.bn_momentum == Approx(0.4f));
      ++norms;
    }
  CHECK(norms == 6);
  CHECK(back.net.layers.size() == net.layers.size());
  // Evaluation (running statistics) and training (batch statistics over groups of 32 here,
  // 64 in the built-in) both: the same logits within float rounding.
  ts::NetworkSpec same_groups = back.net;
  ts::set_bn_group(same_groups, 64);
  const auto a = logits(net, p, false), b = logits(same_groups, back.params, false);
  const auto c = logits(net, p, true), d = logits(same_groups, back.params, true);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i] == Approx(a[i]).margin(1e-5));
    CHECK(d[i] == Approx(c[i]).margin(1e-5));
  }
}

TEST_CASE("torch's x.view(x.size(0), -1) before a dense layer imports as a flatten", "[onnx]") {
  // The nodes torch 1.13 writes for it: Shape, Gather 0, Unsqueeze, Concat with -1, Reshape.
  onnx::ModelProto m = exported("seed_cnn");
  auto* g = m.mutable_graph();
  onnx::NodeProto* flat = first(m, "Flatten");
  const std::string x = flat->input(0), y = flat->output(0);
  auto int64s = [&](const std::string& name, std::vector<int64_t> v) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(int64_t(v.size()));
    for (int64_t e : v) t->add_int64_data(e);
  };
  int64s("zero", {0});
  int64s("minus_one", {-1});
  int64s("axes", {0});
  auto add = [&](const std::string& op, std::vector<std::string> ins, const std::string& out) {
    onnx::NodeProto n;
    n.set_op_type(op);
    for (auto& s : ins) n.add_input(s);
    n.add_output(out);
    return n;
  };
  std::vector<onnx::NodeProto> view = {add("Shape", {x}, "s"), add("Gather", {"s", "zero"}, "n"),
                                       add("Unsqueeze", {"n", "axes"}, "n1"), add("Concat", {"n1", "minus_one"}, "shape"),
                                       add("Reshape", {x, "shape"}, y)};
  attr(&view[3], "axis")->set_i(0);
  std::vector<onnx::NodeProto> nodes;
  for (const auto& n : g->node()) {
    if (&n == flat) {
      for (auto& v : view) nodes.push_back(v);
    } else {
      nodes.push_back(n);
    }
  }
  g->clear_node();
  for (auto& n : nodes) *g->add_node() = n;
  const ts::ImportedModel back = ts::import_onnx(m.SerializeAsString(), "view.onnx");
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  REQUIRE(back.net.layers.size() == net.layers.size());
  CHECK(back.net.layers.back().kind == LayerKind::kDense);
  CHECK(back.net.num_params == net.num_params);
  // A Shape whose result feeds a convolution is not shape arithmetic.
  first(m, "Gather")->set_op_type("Sigmoid");
  CHECK_THAT(refusal(m), Catch::Contains("the op Sigmoid is not supported"));
}

TEST_CASE("graphs the importer cannot map exactly are refused by node", "[onnx]") {
  using Mutate = std::function<void(onnx::ModelProto&)>;
  struct Case {
    const char* model;
    Mutate mutate;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"seed_cnn", [](onnx::ModelProto& m) { first(m, "GlobalAveragePool")->set_op_type("Sigmoid"); },
       "node 'gap' (Sigmoid): the op Sigmoid is not supported (supported: Conv, Relu"},
      {"seed_cnn", [](onnx::ModelProto& m) { attr(first(m, "Conv"), "group")->set_i(2); },
       "node 'conv1' (Conv): group 2; only group 1 is supported"},
      {"seed_cnn", [](onnx::ModelProto& m) {
         auto* a = attr(first(m, "Conv"), "dilations");
         a->set_type(onnx::AttributeProto::INTS);
         a->add_ints(2);
         a->add_ints(2);
       }, "node 'conv1' (Conv): dilation 2; only dilation 1 is supported"},
      {"seed_cnn", [](onnx::ModelProto& m) {
         auto* k = attr(first(m, "Conv"), "kernel_shape");
         k->set_ints(1, 1);
       }, "node 'conv1' (Conv): kernel_shape disagrees with its weight's shape"},
      {"seed_cnn", [](onnx::ModelProto& m) { attr(first(m, "MaxPool"), "ceil_mode")->set_i(1); },
       "node 'pool1' (MaxPool): ceil_mode 1; only ceil_mode 0 (floor) is supported"},
      {"seed_cnn", [](onnx::ModelProto& m) {
         m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_value(64);
       }, "input 'input' is float ? x 3 x 64 x 32; an image input of N x 3 x 32 x 32 floats (CIFAR-10) is supported"},
      {"seed_cnn", [](onnx::ModelProto& m) { attr(first(m, "Gemm"), "transA")->set_i(1); },
       "node 'fc' (Gemm): transA 1 is not supported"},
      {"seed_cnn", [](onnx::ModelProto& m) { *m.mutable_graph()->add_output() = m.graph().output(0); },
       "the graph has 2 outputs ('logits', 'logits'); one output of 10 logits is supported"},
      {"seed_cnn", [](onnx::ModelProto& m) {
         auto* pad = attr(first(m, "MaxPool"), "pads");
         pad->set_type(onnx::AttributeProto::INTS);
         pad->clear_ints();
         for (int v : {0, 1, 0, 1}) pad->add_ints(v);
       }, "node 'pool1' (MaxPool): pads must be the same on H and W"},
      // Found by fuzz_onnx: a node without inputs.
      {"seed_cnn", [](onnx::ModelProto& m) { first(m, "GlobalAveragePool")->clear_input(); },
       "node 'gap' (GlobalAveragePool) has 0 inputs; it needs 1 or more"},
      {"airbench94", [](onnx::ModelProto& m) { first(m, "Erf")->set_op_type("Tanh"); },
       "a Div is supported only as the start of the GELU subgraph PyTorch exports"},
      {"airbench94", [](onnx::ModelProto& m) { attr(first(m, "BatchNormalization"), "training_mode")->set_i(1); },
       "a training-mode BatchNormalization is not supported; export in eval mode"},
      {"tf_tutorial_cnn", [](onnx::ModelProto& m) { attr(first(m, "LRN"), "size")->set_i(4); },
       "node 'norm1' (LRN): size 4; an odd size is supported"},
      {"tf_tutorial_cnn", [](onnx::ModelProto& m) {
         for (auto& t : *m.mutable_graph()->mutable_initializer())
           if (t.name() == "fc3.weight") t.set_data_type(onnx::TensorProto::DOUBLE);
       }, "tensor 'fc3.weight' is of ONNX data type 11; float (1) weights and int64 (7) shapes are supported"},
  };
  for (const Case& c : cases) {
    onnx::ModelProto m = exported(c.model);
    c.mutate(m);
    INFO(c.model << ": " << c.says);
    CHECK_THAT(refusal(m), Catch::StartsWith("m.onnx: ") && Catch::Contains(c.says));
  }
  CHECK_THAT(refusal(onnx::ModelProto()), Catch::Contains("m.onnx has no graph"));
  CHECK_THROWS_WITH(ts::import_onnx("not a model", "junk.onnx"), Catch::Contains("junk.onnx is not an ONNX model"));
}

TEST_CASE("an imported model is named by its file and bytes, and a worker rebuilds it from them", "[onnx]") {
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  const auto p = params_for(net, 6);
  const std::string bytes = ts::export_onnx_bytes(net, p.data());
  const std::string name = ts::onnx_model_name("/some/dir/seed.onnx", bytes);
  CHECK(name.rfind("onnx:seed.onnx@", 0) == 0);
  CHECK(name.size() == std::string("onnx:seed.onnx@").size() + 8);
  CHECK(ts::onnx_model_name("seed.onnx", bytes + " ") != name);
  const ts::NetworkSpec again = ts::network_for(name, bytes);
  CHECK(again.name == name);
  CHECK(again.num_params == net.num_params);
  CHECK(ts::initial_params_of(ts::import_model(name, bytes)) == p);
  CHECK_THROWS_WITH(ts::network_for(name, ""), Catch::Contains("is an ONNX graph, and its bytes are missing"));
  CHECK_THROWS_WITH(ts::read_model_file("/nonexistent/m.onnx"), Catch::Contains("/nonexistent/m.onnx cannot be read"));
}
