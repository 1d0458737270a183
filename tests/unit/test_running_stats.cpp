// Batch-norm running statistics from a step's sum (common/running_stats.h), by hand.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "network.h"
#include "running_stats.h"

using namespace ts;

namespace {

NetworkSpec bn_net(float momentum) {
  LayerSpec conv;
  conv.kind = LayerKind::kConv;
  conv.name = "conv";
  conv.out_channels = 2;
  conv.kernel = 1;
  LayerSpec norm;
  norm.kind = LayerKind::kBatchNorm;
  norm.name = "norm";
  norm.bn_group = 2;
  norm.bn_momentum = momentum;
  LayerSpec fc;
  fc.kind = LayerKind::kDense;
  fc.name = "fc";
  fc.out_channels = 2;
  return finish_network("bn", {1, 2, 2}, 2, {conv, norm, fc});
}

size_t offset_of(const NetworkSpec& net, const std::string& name) {
  for (const auto& p : net.params)
    if (p.name == name) return p.offset;
  FAIL("no parameter " << name);
  return 0;
}

}  // namespace

TEST_CASE("running statistics average the step's groups and move by the momentum", "[running_stats]") {
  const NetworkSpec net = bn_net(0.4f);
  const size_t mean = offset_of(net, "norm.running_mean"), var = offset_of(net, "norm.running_var");
  std::vector<float> params(net.num_params, 3.f), sum(net.num_params, 99.f);
  params[mean] = 0.f, params[mean + 1] = 0.f, params[var] = 1.f, params[var + 1] = 1.f;
  // Four groups: their means sum to (2, -4), their unbiased variances to (8, 2).
  sum[mean] = 2.f, sum[mean + 1] = -4.f, sum[var] = 8.f, sum[var + 1] = 2.f;
  const std::vector<float> before = params;
  update_running_stats(net, sum.data(), 4, params.data());
  // mean: 0.6 * 0 + 0.4 * (0.5, -1);  var: 0.6 * 1 + 0.4 * (2, 0.5)
  CHECK(params[mean] == Approx(0.2));
  CHECK(params[mean + 1] == Approx(-0.4));
  CHECK(params[var] == Approx(1.4));
  CHECK(params[var + 1] == Approx(0.8));
  // Again from there: 0.6 * 0.2 + 0.4 * 0.5 = 0.32; 0.6 * 1.4 + 0.4 * 2 = 1.64
  update_running_stats(net, sum.data(), 4, params.data());
  CHECK(params[mean] == Approx(0.32));
  CHECK(params[var] == Approx(1.64));
  // Nothing else moves, whatever the sum holds there.
  for (size_t i = 0; i < params.size(); ++i)
    if (i < mean || i >= var + 2) REQUIRE(std::memcmp(&params[i], &before[i], sizeof(float)) == 0);
}

TEST_CASE("running statistics leave a network without batch norm alone and need a group", "[running_stats]") {
  const NetworkSpec net = build_network("seed_cnn");
  std::vector<float> params(net.num_params, 1.f), sum(net.num_params, 5.f);
  update_running_stats(net, sum.data(), 8, params.data());
  CHECK(params == std::vector<float>(net.num_params, 1.f));
  const NetworkSpec bn = bn_net(0.1f);
  std::vector<float> p(bn.num_params), s(bn.num_params);
  CHECK_THROWS_WITH(update_running_stats(bn, s.data(), 0, p.data()), Catch::Contains("at least one sample group"));
}
