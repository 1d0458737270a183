// Model::params_to_overwrite (worker/engine/model.h): parameters written in place, as the
// worker unpacks them from the wire, are the ones the next pass computes with. Tag [engine].
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "model.h"
#include "network.h"
#include "random.h"

namespace {

std::vector<float> glorot(const ts::NetworkSpec& net, uint64_t seed) {
  std::vector<float> p(net.num_params);
  ts::glorot_uniform_init(net, seed, p.data());
  return p;
}

}  // namespace

TEST_CASE("parameters written in place are reloaded by the next step, bit for bit as set_params",
          "[engine]") {
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  const int n = 8;
  ts::Rng rng(3);
  std::vector<float> images(size_t(n) * net.input.size());
  for (auto& x : images) x = float(rng.uniform());
  std::vector<int32_t> labels;
  for (int i = 0; i < n; ++i) labels.push_back(int32_t(rng.below(net.num_classes)));
  const std::vector<float> first = glorot(net, 1), second = glorot(net, 2);

  // In place: a step with the first parameters loads them into the primitives; then the
  // second are written over the buffer, and the same batch size must pick them up.
  ts::Model in_place(net, n);
  std::memcpy(in_place.params_to_overwrite(), first.data(), first.size() * sizeof(float));
  std::vector<float> grad_first(net.num_params), grad_in_place(net.num_params);
  in_place.train_step(images.data(), labels.data(), n, 1.f / n, grad_first.data());
  std::memcpy(in_place.params_to_overwrite(), second.data(), second.size() * sizeof(float));
  const ts::StepStats a = in_place.train_step(images.data(), labels.data(), n, 1.f / n, grad_in_place.data());

  ts::Model copied(net, n);
  copied.set_params(second.data());
  std::vector<float> grad_copied(net.num_params);
  const ts::StepStats b = copied.train_step(images.data(), labels.data(), n, 1.f / n, grad_copied.data());

  CHECK(grad_first != grad_in_place);  // the second parameters really changed the step
  CHECK(a.loss_sum == b.loss_sum);
  CHECK(a.correct == b.correct);
  CHECK(grad_in_place == grad_copied);
}
