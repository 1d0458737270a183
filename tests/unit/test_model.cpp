// The oneDNN engine against the independent double-precision reference (tests/reference/),
// and a short real training run. Tag [engine].
#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <sys/stat.h>

#include "augment.h"
#include "cifar10.h"
#include "epoch_plan.h"
#include "model.h"
#include "network.h"
#include "optimizer.h"
#include "random.h"
#include "reference/reference_model.h"
#include "synthetic_cifar10.h"

namespace {

struct Batch {
  std::vector<float> images;
  std::vector<int32_t> labels;
};

Batch random_batch(const ts::NetworkSpec& net, int n, uint64_t seed) {
  ts::Rng rng(seed);
  Batch b;
  b.images.resize(size_t(n) * net.input.size());
  for (auto& x : b.images) x = float(rng.uniform());
  for (int i = 0; i < n; ++i) b.labels.push_back(int32_t(rng.below(net.num_classes)));
  return b;
}

// Glorot weights plus small random biases, so bias gradients and ReLU masks are exercised.
std::vector<float> random_params(const ts::NetworkSpec& net, uint64_t seed) {
  std::vector<float> p(net.num_params);
  ts::glorot_uniform_init(net, seed, p.data());
  ts::Rng rng(seed + 1);
  for (const auto& ps : net.params)
    if (ps.is_bias)
      for (size_t i = 0; i < ps.size; ++i) p[ps.offset + i] = float(0.1 * (rng.uniform() - 0.5));
  return p;
}

// ||a - b|| / ||b|| over one tensor.
double rel_error(const float* a, const double* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

void check_against_reference(const std::string& name, int n, uint64_t seed) {
  const ts::NetworkSpec net = ts::build_network(name);
  const auto params = random_params(net, seed);
  const Batch b = random_batch(net, n, seed + 7);
  ts::Model model(net, n);
  model.set_params(params.data());
  std::vector<float> grad(net.num_params, 12345.f);  // overwritten, never accumulated into
  const float scale = 1.f / float(n);
  const ts::StepStats st = model.train_step(b.images.data(), b.labels.data(), n, scale, grad.data());
  const ts::ReferenceResult ref =
      ts::reference_train_step(net, params, b.images, b.labels, n, double(scale));

  INFO(name << ", batch " << n);
  CHECK(std::abs(st.loss_sum - ref.loss_sum) / ref.loss_sum < 1e-5);
  CHECK(st.correct == ref.correct);
  const auto logits = model.last_logits();
  REQUIRE(logits.size() == ref.logits.size());
  CHECK(rel_error(logits.data(), ref.logits.data(), logits.size()) < 1e-5);
  for (const auto& p : net.params) {
    const double e = rel_error(grad.data() + p.offset, ref.grad.data() + p.offset, p.size);
    INFO(p.name << " gradient relative error " << e);
    CHECK(e < 1e-4);
  }
}

}  // namespace

TEST_CASE("seed_cnn loss and every gradient match the reference", "[engine]") {
  check_against_reference("seed_cnn", 16, 1);
}

TEST_CASE("seed_cnn at batch 128 matches the reference", "[engine]") {
  check_against_reference("seed_cnn", 128, 2);
}

TEST_CASE("tf_tutorial_cnn loss and every gradient match the reference", "[engine]") {
  check_against_reference("tf_tutorial_cnn", 4, 3);
}

TEST_CASE("one model serves several batch sizes and picks up new parameters", "[engine]") {
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  ts::Model model(net, 32);
  std::vector<float> grad(net.num_params);
  auto params = random_params(net, 11);
  model.set_params(params.data());
  const Batch big = random_batch(net, 32, 5);
  model.train_step(big.images.data(), big.labels.data(), 32, 1.f, grad.data());

  // New parameters, then a smaller batch: both must be honoured.
  params = random_params(net, 12);
  model.set_params(params.data());
  const Batch small = random_batch(net, 9, 6);
  const auto st = model.train_step(small.images.data(), small.labels.data(), 9, 1.f, grad.data());
  const auto ref = ts::reference_train_step(net, params, small.images, small.labels, 9, 1.0);
  CHECK(std::abs(st.loss_sum - ref.loss_sum) / ref.loss_sum < 1e-5);
  const auto& w = net.params[0];
  CHECK(rel_error(grad.data() + w.offset, ref.grad.data() + w.offset, w.size) < 1e-4);

  // Back to the first batch size with the new parameters: its primitives reload them too.
  const auto ev = model.evaluate(big.images.data(), big.labels.data(), 32);
  const auto ref_big = ts::reference_train_step(net, params, big.images, big.labels, 32, 1.0);
  CHECK(std::abs(ev.loss_sum - ref_big.loss_sum) / ref_big.loss_sum < 1e-5);
  CHECK(ev.correct == ref_big.correct);

  CHECK_THROWS_AS(model.train_step(big.images.data(), big.labels.data(), 33, 1.f, grad.data()),
                  std::invalid_argument);
}

TEST_CASE("the engine reports the OpenMP team it really runs", "[engine]") {
  // ctest sets OMP_NUM_THREADS=2 for this binary.
  const char* env = std::getenv("OMP_NUM_THREADS");
  const int expected = env ? std::atoi(env) : omp_get_max_threads();
  CHECK(ts::omp_team_size() == expected);
}

TEST_CASE("a short training run on CIFAR-10 lowers the loss clearly", "[engine][train]") {
  std::string dir = CIFAR10_TEST_DIR;
  struct stat st {};
  if (stat((dir + "/data_batch_1.bin").c_str(), &st) != 0) {
    dir = std::string(TEST_TMP_DIR) + "/engine_train_synthetic";
    ts::ensure_synthetic_cifar10(dir, 3);
    WARN("real CIFAR-10 not found at " << CIFAR10_TEST_DIR << ": training on generated data");
  }
  const ts::Cifar10 data = ts::Cifar10::open(dir);
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  const int batch = 128, steps = 150;
  ts::Model model(net, batch);
  std::vector<float> params(net.num_params), grad(net.num_params);
  ts::glorot_uniform_init(net, 5, params.data());
  auto opt = ts::make_optimizer(ts::OptimizerConfig{}, net.num_params);
  const auto order = ts::epoch_order(5, 0, 0, 45000, true);
  std::vector<float> images(size_t(batch) * net.input.size());
  std::vector<int32_t> labels(batch);
  double first = 0, last = 0, initial = 0;
  for (int s = 0; s < steps; ++s) {
    ts::assemble_batch(data, ts::Set::kTrain, order.data() + size_t(s) * batch, batch,
                       ts::Augment::kNone, 5, 0, images.data(), labels.data());
    model.set_params(params.data());
    const auto r = model.train_step(images.data(), labels.data(), batch, 1.f / batch, grad.data());
    REQUIRE(std::all_of(grad.begin(), grad.end(), [](float g) { return std::isfinite(g); }));
    opt->step(params.data(), grad.data());
    const double mean = r.loss_sum / batch;
    if (s == 0) initial = mean;
    if (s < 20) first += mean / 20;
    if (s >= steps - 20) last += mean / 20;
  }
  INFO("loss at step 0 " << initial << "; mean loss, first 20 steps " << first
                           << ", last 20 steps " << last);
  CHECK(std::abs(initial - std::log(10.0)) < 0.15);  // Glorot init starts near chance
  CHECK(last < first - 0.15);
}
