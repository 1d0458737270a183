// The training run's update of airbench94's recipe, driven through a scripted transport:
// the same state as the update done by hand (common/state_update.h) with the run's total
// steps, the whitening bias frozen after --whiten-bias-epochs, and the groups of each step.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "float_packing.h"
#include "membership.h"
#include "network.h"
#include "optimizer.h"
#include "progress_display.h"
#include "state_update.h"
#include "timing.h"
#include "training_run.h"
#include "worker_events.h"

using namespace ts;
using threadsplit::CoordinatorMessage;

namespace {

const char* const kRun = "recipe";

// Workers that answer every step of their current deal with the same gradient.
class EchoWorkers : public WorkerTransport {
 public:
  explicit EchoWorkers(std::vector<float> grad)
      : grad_(std::move(grad)), queue_([](double deadline_s) {
          const double left = deadline_s - now_seconds();
          if (left > 0) std::this_thread::sleep_for(std::chrono::microseconds(int64_t(left * 1e6)));
          return false;
        }) {}
  EventQueue& events() override { return queue_; }
  bool send(int rank, std::shared_ptr<const CoordinatorMessage> m) override {
    Deal& d = deals_[size_t(rank)];
    if (m->has_deal()) {
      d.id = m->deal().deal_id();
      d.first = m->deal().first_step();
      d.sizes.clear();
      for (const auto& s : m->deal().steps()) d.sizes.push_back(s.indices_size());
      if (!d.sizes.empty()) answer(rank, d.first);
    } else if (m->has_params() && m->params().step() + 1 < d.first + int64_t(d.sizes.size())) {
      answer(rank, m->params().step() + 1);
    }
    return true;
  }
  void release(int) override {}

 private:
  struct Deal {
    uint32_t id = 0;
    int64_t first = 0;
    std::vector<int> sizes;
  };
  void answer(int rank, int64_t step) {
    const Deal& d = deals_[size_t(rank)];
    WorkerEvent e;
    e.rank = rank;
    threadsplit::StepResult* r = e.message.mutable_step();
    r->set_run_id(kRun);
    r->set_step(step);
    r->set_deal_id(d.id);
    r->set_samples(d.sizes[size_t(step - d.first)]);
    r->set_loss_sum(1.0);
    pack_floats(grad_.data(), grad_.size(), r->mutable_gradient());
    queue_.push(std::move(e));
  }
  std::vector<float> grad_;
  Deal deals_[2];
  EventQueue queue_;
};

// A frozen conv with a trained bias (the whitening conv), a batch norm over pairs, a dense.
NetworkSpec tiny_recipe_net() {
  LayerSpec whiten;
  whiten.kind = LayerKind::kConv;
  whiten.name = "whiten";
  whiten.out_channels = 2;
  whiten.kernel = 2;
  whiten.frozen = true;
  LayerSpec norm;
  norm.kind = LayerKind::kBatchNorm;
  norm.name = "norm";
  norm.bn_group = 2;
  norm.bn_momentum = 0.4f;
  LayerSpec fc;
  fc.kind = LayerKind::kDense;
  fc.name = "fc";
  fc.out_channels = 2;
  NetworkSpec net = finish_network("tiny", {2, 3, 3}, 2, {whiten, norm, fc});
  net.init = "pytorch";  // running_var 1 (Glorot knows no buffers)
  return net;
}

RunSetup recipe_setup() {
  RunSetup s;
  s.options.epochs = 2;
  s.options.eval_every = 0;
  s.options.whiten_bias_epochs = 1;
  s.net = tiny_recipe_net();
  s.world_size = 2;
  s.global_batch = 8;
  s.split.train_begin = 0;
  s.split.train_end = 32;  // 4 steps an epoch, 8 in all
  s.run_id = kRun;
  OptimizerConfig& c = s.optimizer;
  c.kind = "sgd";
  c.learning_rate = 0.05;
  c.momentum = 0.85;
  c.nesterov = true;
  c.weight_decay = 0.004;
  c.bias_lr_scale = 8;
  c.lr_schedule = "triangular";
  c.lookahead_every = 3;
  return s;
}

// Each worker's gradient: at the running statistics, the sum over its two groups.
std::vector<float> worker_gradient(const NetworkSpec& net) {
  std::vector<float> g(net.num_params);
  for (size_t i = 0; i < g.size(); ++i) g[i] = 0.125f * float(int(i % 7) - 3);
  for (const ParamSpec& p : net.params)
    if (p.is_buffer())
      for (size_t i = p.offset; i < p.offset + p.size; ++i) g[i] = 2.f * (0.5f + 0.25f * float(i % 3));
  return g;
}

}  // namespace

TEST_CASE("the training run updates the recipe's state as update_state does, over the run's total steps", "[optim][training_run]") {
  const RunSetup setup = recipe_setup();
  const std::vector<float> g = worker_gradient(setup.net);
  EchoWorkers t(g);
  Membership members(2, "abort", 1.0, t);
  std::vector<float> initial(setup.net.num_params);
  init_params(setup.net, 3, initial.data());
  TrainingRun run(setup, members, t, initial, make_optimizer(setup.optimizer, setup.net), 0, 0, 0);
  ProgressDisplay progress(false);
  run.train(progress);
  CHECK(run.total_steps() == 8);
  REQUIRE(run.step() == 8);

  // By hand: the sum of the two workers, four groups a step, the bias frozen from epoch 2.
  std::vector<float> sum(g.size());
  for (size_t i = 0; i < g.size(); ++i) sum[i] = g[i] + g[i];
  auto opt = make_optimizer(setup.optimizer, setup.net);
  std::vector<float> p = initial;
  for (int64_t step = 0; step < 8; ++step) {
    set_whitening_bias_for_epoch(*opt, setup.net, step / 4, 1);
    update_state(setup.net, *opt, p.data(), sum.data(), 4, step, 8);
  }
  CHECK(std::memcmp(run.params().data(), p.data(), p.size() * sizeof(float)) == 0);
  for (size_t k = 0; k < opt->slots().size(); ++k)
    CHECK(run.optimizer().slots()[k].values == opt->slots()[k].values);
  // The epoch record carries the schedule's factor of its last step (t = 3 and t = 7 of 8).
  REQUIRE(run.epochs().size() == 2);
  CHECK(run.epochs()[0].lr_factor == Approx(lr_schedule_factor("triangular", 3, 8)));
  CHECK(run.epochs()[1].lr_factor == Approx(lr_schedule_factor("triangular", 7, 8)));

  // And the whitening bias did change in epoch 1: a run that never froze it ends elsewhere.
  RunSetup always = setup;
  always.options.whiten_bias_epochs = 0;
  EchoWorkers t2(g);
  Membership members2(2, "abort", 1.0, t2);
  TrainingRun run2(always, members2, t2, initial, make_optimizer(always.optimizer, always.net), 0, 0, 0);
  run2.train(progress);
  const ParamSpec& bias = setup.net.params[1];
  REQUIRE(bias.name == "whiten.bias");
  CHECK(run2.params()[bias.offset] != run.params()[bias.offset]);
}

TEST_CASE("a step that is not a whole number of batch-norm groups stops the run before its update", "[optim][training_run]") {
  RunSetup setup = recipe_setup();
  setup.options.epochs = 1;
  setup.split.train_end = 35;  // the fifth step has 3 samples: one group and a half
  EchoWorkers t(worker_gradient(setup.net));
  Membership members(2, "abort", 1.0, t);
  std::vector<float> initial(setup.net.num_params, 0.5f);
  TrainingRun run(setup, members, t, initial, make_optimizer(setup.optimizer, setup.net), 0, 0, 0);
  ProgressDisplay progress(false);
  CHECK_THROWS_WITH(run.train(progress), Catch::Contains("step 4 has 3 samples, not a whole number of batch-norm groups of 2"));
  CHECK(run.step() == 4);
}
