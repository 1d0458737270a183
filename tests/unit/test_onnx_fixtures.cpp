// PyTorch's own exports (tests/data/onnx, made by scripts/onnx_fixtures.py with PyTorch 1.13):
// imported, one training step on the fixture's batch gives PyTorch's loss, logits, every
// gradient and the running statistics (relative error < 1e-4), the imported seed_cnn trains
// to the built-in's bits, and every file of unsupported/ is refused naming what its
// refusals.json says. Tag [onnx].
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "atomic_file.h"
#include "model.h"
#include "network.h"
#include "onnx_model.h"

using nlohmann::json;

namespace {

const std::string kDir = ONNX_FIXTURE_DIR;

struct Reference {
  json manifest;
  std::string bin;
  std::vector<double> tensor(const std::string& name) const {
    for (const json& t : manifest.at("tensors"))
      if (t.at("name") == name && t.at("section") != "weight" && t.at("section") != "input")
        return read(t);
    for (const json& t : manifest.at("tensors"))
      if (t.at("name") == name) return read(t);
    FAIL("no tensor " << name << " in the reference");
    return {};
  }
  std::vector<double> in_section(const std::string& section, const std::string& name) const {
    for (const json& t : manifest.at("tensors"))
      if (t.at("name") == name && t.at("section") == section) return read(t);
    return {};
  }
  std::vector<double> read(const json& t) const {
    const size_t off = t.at("offset"), n = t.at("count");
    std::vector<double> v(n);
    if (t.at("dtype") == "float32") {
      for (size_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, bin.data() + off + i * 4, 4);
        v[i] = f;
      }
    } else {
      std::memcpy(v.data(), bin.data() + off, n * 8);
    }
    return v;
  }
};

Reference reference(const std::string& name) {
  Reference r;
  r.manifest = json::parse(ts::read_whole_file(kDir + "/" + name + ".json"));
  r.bin = ts::read_whole_file(kDir + "/" + name + ".bin");
  return r;
}

double rel_error(const float* a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

struct StepOut {
  double loss = 0;
  std::vector<float> grad, logits;
};

StepOut step(const ts::NetworkSpec& net, const std::vector<float>& params, const Reference& r) {
  const std::vector<double> in = r.tensor("input");
  const std::vector<float> images(in.begin(), in.end());
  std::vector<int32_t> labels;
  for (int l : r.manifest.at("labels")) labels.push_back(l);
  const int n = int(labels.size());
  ts::ModelOptions o;
  o.winograd = false;
  ts::Model m(net, n, o);
  m.set_params(params.data());
  StepOut s;
  s.grad.assign(net.num_params, 0.f);
  s.loss = m.train_step(images.data(), labels.data(), n, 1.f / float(n), s.grad.data()).loss_sum / n;
  s.logits = m.last_logits();
  return s;
}

}  // namespace

TEST_CASE("PyTorch's exports train one step to PyTorch's loss, gradients and running statistics", "[onnx]") {
  for (const char* name : {"seed_cnn", "tf_tutorial_cnn_small", "airbench94_small", "resnet8"}) {
    INFO(name);
    const Reference r = reference(name);
    ts::ImportedModel m = ts::import_onnx(ts::read_whole_file(kDir + "/" + std::string(name) + ".onnx"), name);
    CHECK(m.missing_initializers.empty());
    size_t trained = 0;  // PyTorch's count: parameters, not the running-statistic buffers
    for (const ts::ParamSpec& p : m.net.params) trained += p.is_buffer() ? 0 : p.size;
    CHECK(trained == size_t(r.manifest.at("param_count")));
    const int batch = int(r.manifest.at("batch"));
    if (m.net.sample_granule() > 1) ts::set_bn_group(m.net, batch);  // PyTorch: the whole batch
    // The imported weights are the file's.
    for (const ts::ParamSpec& p : m.net.params) {
      const std::vector<double> w = r.in_section("weight", p.name);
      REQUIRE(w.size() == p.size);
      for (size_t i = 0; i < p.size; ++i) REQUIRE(m.params[p.offset + i] == float(w[i]));
    }
    const StepOut s = step(m.net, m.params, r);
    CHECK(s.loss == Approx(double(r.manifest.at("loss"))).epsilon(1e-5));
    CHECK(rel_error(s.logits.data(), r.tensor("logits_train")) < 1e-4);
    int grads = 0, stats = 0;
    for (const ts::ParamSpec& p : m.net.params) {
      INFO(p.name);
      if (!p.is_buffer()) {
        CHECK(rel_error(s.grad.data() + p.offset, r.in_section("grad", p.name)) < 1e-4);
        ++grads;
        continue;
      }
      // The coordinator's update of a running statistic from the step's group value (one
      // group here): (1 - momentum) x old + momentum x value.
      float momentum = 0;
      for (const ts::LayerSpec& l : m.net.layers)
        if (l.kind == ts::LayerKind::kBatchNorm && p.name.rfind(l.name + ".", 0) == 0) momentum = l.bn_momentum;
      REQUIRE(momentum > 0);
      std::vector<float> after(p.size);
      for (size_t i = 0; i < p.size; ++i)
        after[i] = (1 - momentum) * m.params[p.offset + i] + momentum * s.grad[p.offset + i];
      CHECK(rel_error(after.data(), r.in_section("running_after", p.name)) < 1e-4);
      ++stats;
    }
    CHECK(grads > 0);
    if (std::string(name) == "resnet8") {
      CHECK(stats == 18);  // 9 batch norms
      int adds = 0;
      for (const auto& l : m.net.layers) adds += l.kind == ts::LayerKind::kAdd;
      CHECK(adds == 3);
    }
  }
}

TEST_CASE("PyTorch's seed_cnn export is the built-in seed_cnn: the same layers and the same step, bit for bit",
          "[onnx]") {
  const ts::ImportedModel m = ts::import_onnx(ts::read_whole_file(kDir + "/seed_cnn.onnx"), "seed_cnn.onnx");
  const ts::NetworkSpec builtin = ts::build_network("seed_cnn");
  REQUIRE(m.net.layers.size() == builtin.layers.size());
  for (size_t i = 0; i < builtin.layers.size(); ++i) {
    CHECK(m.net.layers[i].kind == builtin.layers[i].kind);
    CHECK(m.net.layers[i].out == builtin.layers[i].out);
    CHECK(m.net.layers[i].relu == builtin.layers[i].relu);
    CHECK(m.net.layers[i].name == builtin.layers[i].name);
  }
  for (size_t k = 0; k < builtin.params.size(); ++k) CHECK(m.net.params[k].offset == builtin.params[k].offset);
  const Reference r = reference("seed_cnn");
  const StepOut a = step(m.net, m.params, r), b = step(builtin, m.params, r);
  CHECK(a.loss == b.loss);
  CHECK(a.grad == b.grad);
}

TEST_CASE("every file of unsupported/ is refused, naming what refusals.json says", "[onnx]") {
  const json cases = json::parse(ts::read_whole_file(kDir + "/unsupported/refusals.json"));
  CHECK(cases.size() >= 10);
  for (const auto& [file, c] : cases.items()) {
    INFO(file << ": " << c.at("why").get<std::string>());
    std::string message = "(accepted)";
    try {
      ts::import_onnx(ts::read_whole_file(kDir + "/unsupported/" + file), file);
    } catch (const std::invalid_argument& e) {
      message = e.what();
    }
    INFO(message);
    CHECK(message.rfind(file + ": ", 0) == 0);
    for (const std::string word : c.at("must_name")) CHECK_THAT(message, Catch::Contains(word));
  }
}
