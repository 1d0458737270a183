// --bucket-kb: the bucket plan both sides compute, the bucketed sum (the same bits as the
// whole gradients summed, whatever order the buckets arrive in), and what a gather refuses.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "float_packing.h"
#include "gradient_buckets.h"
#include "gradient_reducer.h"
#include "shared_plane.h"
#include "network.h"

using namespace ts;

TEST_CASE("the bucket plan covers the gradient from its end in whole layers", "[buckets]") {
  for (const std::string& name : network_names()) {
    const NetworkSpec net = build_network(name);
    INFO(name);
    CHECK(gradient_buckets(net, 0).empty());
    const auto one = gradient_buckets(net, net.num_params * 2);
    REQUIRE(one.size() == 1);
    CHECK(one[0].begin == 0);
    CHECK(one[0].end == net.num_params);
    // Small buckets: every layer with parameters its own, last layer first.
    const auto each = gradient_buckets(net, 1);
    size_t with_params = 0;
    for (size_t i = 0; i < net.layers.size(); ++i)
      if (layer_param_begin(net, i) < net.num_params) ++with_params;
    CHECK(each.size() == with_params);
    CHECK(each.front().end == net.num_params);
    CHECK(each.back().begin == 0);
    for (size_t k = 1; k < each.size(); ++k) CHECK(each[k].end == each[k - 1].begin);
    // 64 KiB: every bucket but the first-layer end holds at least that much.
    const size_t floats = 64 * 1024 / sizeof(float);
    const auto plan = gradient_buckets(net, floats);
    for (size_t k = 0; k + 1 < plan.size(); ++k) CHECK(plan[k].size() >= floats);
    size_t covered = 0;
    for (const auto& b : plan) covered += b.size();
    CHECK(covered == net.num_params);
  }
  // tf_tutorial_cnn's buckets: the dense layers finish first and hold most of the floats.
  const NetworkSpec tf = build_network("tf_tutorial_cnn");
  const auto plan = gradient_buckets(tf, 1024 * 1024 / sizeof(float));
  REQUIRE(plan.size() >= 2);
  CHECK(plan.back().begin == 0);
}

TEST_CASE("the bucketed sum is the same bits as the whole sum, whatever order the buckets arrive in", "[buckets]") {
  const NetworkSpec net = build_network("seed_cnn");
  const size_t n = net.num_params;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1e3f, 1e3f);
  const int P = 4;
  std::vector<std::vector<float>> grads(P, std::vector<float>(n));
  for (auto& g : grads)
    for (float& x : g) x = u(rng) * (u(rng) > 0 ? 1e-4f : 1.f);  // mixed magnitudes: order matters
  std::vector<threadsplit::WorkerMessage> whole(P);
  for (int r = 0; r < P; ++r) pack_floats(grads[size_t(r)].data(), n, whole[size_t(r)].mutable_step()->mutable_gradient());
  GradientReducer plain(n);
  const std::vector<float> expect = plain.reduce(whole, {0, 1, 2, 3});

  GradientReducer bucketed(n);
  bucketed.set_buckets(gradient_buckets(net, 1));
  const auto& plan = bucketed.buckets();
  REQUIRE(plan.size() >= 3);
  std::vector<std::pair<int, int>> order;  // (rank, bucket)
  for (int r = 0; r < P; ++r)
    for (int b = 0; b < int(plan.size()); ++b) order.push_back({r, b});
  for (int trial = 0; trial < 5; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    bucketed.begin({0, 1, 2, 3}, P);
    for (const auto& [r, b] : order) {
      std::string bytes;
      const GradientBucket& g = plan[size_t(b)];
      pack_floats(grads[size_t(r)].data() + g.begin, g.size(), &bytes);
      REQUIRE(bucketed.add(r, b, &bytes).empty());
    }
    CHECK(bucketed.complete());
    for (int r = 0; r < P; ++r) CHECK(bucketed.received(r) == int(plan.size()));
    CHECK(bucketed.sum() == expect);  // bit for bit
  }
  // A second bucket, one out of range, the wrong size, a rank with nothing to send.
  bucketed.begin({0, 2}, P);
  std::string b0;
  pack_floats(grads[0].data() + plan[0].begin, plan[0].size(), &b0);
  std::string copy = b0;
  CHECK(bucketed.add(0, 0, &copy).empty());
  copy = b0;
  CHECK_THAT(bucketed.add(0, 0, &copy), Catch::Contains("a second copy of gradient bucket 0"));
  copy = b0;
  CHECK_THAT(bucketed.add(0, int(plan.size()), &copy), Catch::Contains("of a plan of"));
  copy = b0.substr(4);
  CHECK_THAT(bucketed.add(2, 0, &copy), Catch::Contains("bytes instead of"));
  copy = b0;
  CHECK_THAT(bucketed.add(1, 0, &copy), Catch::Contains("a rank that computes nothing"));
  CHECK_FALSE(bucketed.complete());
}

TEST_CASE("a data plane is refused by a worker when it is not the coordinator's or does not fit", "[data_plane]") {
  SharedPlane plane = SharedPlane::create(1000, 2);
  plane.params()[999] = 7.f;
  plane.slot(1)[0] = 3.f;
  const int fd = dup(plane.fd());
  SharedPlane seen = SharedPlane::open(fd, 1000, 1);
  CHECK(seen.params()[999] == 7.f);  // the same pages
  CHECK(seen.slot(1)[0] == 3.f);
  CHECK_THROWS_WITH(SharedPlane::open(dup(plane.fd()), 999, 0), Catch::Contains("holds 2 slots of 1000 floats"));
  CHECK_THROWS_WITH(SharedPlane::open(dup(plane.fd()), 1000, 2), Catch::Contains("rank 2"));
  FILE* f = std::tmpfile();
  std::fputs(std::string(5000, 'x').c_str(), f);
  std::fflush(f);
  CHECK_THROWS_WITH(SharedPlane::open(dup(fileno(f)), 1000, 0), Catch::Contains("is not a threadsplit data plane"));
  std::fclose(f);
}
