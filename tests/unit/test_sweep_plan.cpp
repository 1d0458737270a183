// The sweep's planning: which points, with which batches, in which order.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "sweep_plan.h"
#include "trial_runner.h"
#include <algorithm>

TEST_CASE("the splits of a core budget are every P dividing it", "[sweep]") {
  using V = std::vector<std::pair<int, int>>;
  CHECK(ts::splits_of(1) == V{{1, 1}});
  CHECK(ts::splits_of(2) == V{{1, 2}, {2, 1}});
  CHECK(ts::splits_of(12) == V{{1, 12}, {2, 6}, {3, 4}, {4, 3}, {6, 2}, {12, 1}});
  for (const auto& [p, t] : ts::splits_of(16)) CHECK(p * t == 16);
}

TEST_CASE("the default plan on 2 cores covers both models, both batch modes and all three splits", "[sweep]") {
  const ts::SweepOptions o;
  const auto points = ts::plan_points(o, 2);
  REQUIRE(points.size() == 2 * 2 * 3);  // 1x1x2, 1x2x1 and 2x1x1 (P x I x T)
  std::set<std::string> seen;
  for (size_t i = 0; i < points.size(); ++i) {
    const ts::SweepPoint& p = points[i];
    CHECK(p.index == int(i));
    CHECK(p.procs * p.inter_op * p.threads == 2);
    CHECK(p.cores == 2);
    CHECK(p.subscription == "full");
    CHECK(p.warmup_steps == 5);
    CHECK(p.steps == (p.model == "seed_cnn" ? 200 : 40));
    if (p.batch_mode == "global") {
      CHECK(p.global_batch == 128);  // the same math for every split
      CHECK(p.batch_per_worker == 0);
    } else {
      CHECK(p.batch_per_worker == 64);  // batch / N: the N-process point matches global mode
      CHECK(p.global_batch == 64 * p.procs);
    }
    seen.insert(p.model + "/" + p.batch_mode + "/" + p.label());
  }
  CHECK(seen.size() == points.size());
  CHECK(seen.count("tf_tutorial_cnn/per_worker/2x1x1") == 1);
  CHECK(seen.count("seed_cnn/global/1x2x1") == 1);
  CHECK(seen.count("seed_cnn/global/1x1x2") == 1);
}

TEST_CASE("under- and over-subscribed points and a loader grid are added only on request", "[sweep]") {
  ts::SweepOptions o;
  o.models = {"seed_cnn"};
  o.batch_modes = {"global"};
  o.under = true;
  o.over = true;
  o.loader_threads = {1, 2};
  o.inter_op = {1};  // the budgets alone here; the inter-op axis below
  const auto points = ts::plan_points(o, 4);
  std::map<std::string, int> per_budget;
  for (const auto& p : points) {
    ++per_budget[p.subscription];
    if (p.subscription == "under") {
      CHECK(p.procs * p.threads == 2);
      CHECK(p.cores == 2);
    } else if (p.subscription == "over") {
      CHECK(p.procs * p.threads == 8);
      CHECK(p.cores == 4);
      CHECK(p.label().find("over") != std::string::npos);
    } else {
      CHECK(p.procs * p.threads == 4);
    }
  }
  CHECK(per_budget["full"] == 3 * 2);   // 1x4 2x2 4x1, two loader counts each
  CHECK(per_budget["under"] == 2 * 2);  // 1x2 2x1
  CHECK(per_budget["over"] == 4 * 2);   // 1x8 2x4 4x2 8x1
  // One core cannot be halved: no under-subscribed points then.
  for (const auto& p : ts::plan_points(o, 1)) CHECK(p.subscription != "under");
}

TEST_CASE("the inter-op axis adds every P x I x T of a budget for each I that divides it", "[sweep]") {
  std::vector<std::string> labels;
  for (const ts::Split3& s : ts::splits_of(8, {1, 2, 3, 4}))
    labels.push_back(std::to_string(s.procs) + "x" + std::to_string(s.inter_op) + "x" + std::to_string(s.threads));
  // I = 3 does not divide 8; P ascending, then I.
  CHECK(labels == std::vector<std::string>{"1x1x8", "1x2x4", "1x4x2", "2x1x4", "2x2x2", "2x4x1",
                                           "4x1x2", "4x2x1", "8x1x1"});
  CHECK(ts::splits_of(2, {2, 2, 1}).size() == 3);  // a repeated I counts once
  ts::SweepOptions o;
  o.models = {"seed_cnn"};
  o.batch_modes = {"per_worker"};
  o.inter_op = {2};
  const auto points = ts::plan_points(o, 4);
  REQUIRE(points.size() == 2);  // 1x2x2, 2x2x1
  for (const auto& p : points) {
    CHECK(p.inter_op == 2);
    CHECK(p.global_batch == 32 * p.procs);  // the teams split a worker's share; P alone sets the batch
  }
  CHECK(points[1].label() == "2x2x1");
  o.inter_op = {};
  CHECK_THROWS_AS(ts::plan_points(o, 4), std::invalid_argument);
}

TEST_CASE("repeats are interleaved forward and backward so drift hits every point alike", "[sweep]") {
  const auto order = ts::interleave(3, 3);
  REQUIRE(order.size() == 9);
  std::vector<int> pts;
  for (size_t i = 0; i < order.size(); ++i) {
    CHECK(order[i].order == int(i));
    pts.push_back(order[i].point);
  }
  CHECK(pts == std::vector<int>{0, 1, 2, 2, 1, 0, 0, 1, 2});
  // Each point runs once per repeat; over an even number of repeats every point's mean
  // position is the same (over an odd number it differs by at most one pass).
  std::map<int, int> runs;
  for (const auto& t : order) ++runs[t.point];
  for (int p = 0; p < 3; ++p) CHECK(runs[p] == 3);
  const auto even = ts::interleave(3, 2);
  std::map<int, int> pos;
  for (const auto& t : even) pos[t.point] += t.order;
  CHECK(pos[0] == pos[1]);
  CHECK(pos[1] == pos[2]);
}

TEST_CASE("step counts are given for every model or per model, and bad requests are refused", "[sweep]") {
  ts::SweepOptions o;
  ts::parse_steps("seed_cnn=7,tf_tutorial_cnn=3", o);
  for (const auto& p : ts::plan_points(o, 2)) CHECK(p.steps == (p.model == "seed_cnn" ? 7 : 3));
  ts::parse_steps("11", o);
  for (const auto& p : ts::plan_points(o, 2)) CHECK(p.steps == 11);
  CHECK_THROWS_AS(ts::parse_steps("seed_cnn=x", o), std::invalid_argument);
  CHECK_THROWS_AS(ts::parse_int_list("--repeats", "0"), std::invalid_argument);
  CHECK(ts::parse_int_list("--loader-threads", "1,2,4") == std::vector<int>{1, 2, 4});
  ts::SweepOptions bad;
  bad.batch_modes = {"sideways"};
  CHECK_THROWS_AS(ts::plan_points(bad, 2), std::invalid_argument);
  CHECK_THROWS_AS(ts::plan_points(ts::SweepOptions{}, 0), std::invalid_argument);
}

TEST_CASE("a sweep model with a precision runs that model at that precision", "[sweep]") {
  ts::SweepPoint p;
  p.model = "airbench94@bf16";
  p.global_batch = 128;
  p.batch_mode = "global";
  const auto a = ts::point_args(p);
  const auto value_of = [&](const std::string& flag) {
    for (size_t i = 0; i + 1 < a.size(); ++i)
      if (a[i] == flag) return a[i + 1];
    return std::string("(absent)");
  };
  CHECK(value_of("--model") == "airbench94");
  CHECK(value_of("--precision") == "bf16");
  p.model = "seed_cnn";
  const auto plain = ts::point_args(p);
  CHECK(std::find(plain.begin(), plain.end(), "--precision") == plain.end());
}
