// What the coordinator's divergence guard (coordinator/divergence_guard.h) costs per step:
// the finite check of the gradient sum, the copy of the state before the update and the
// finite check of the parameters and optimizer slots after it, beside the optimizer step
// itself. Median of repeated timings over the model's real parameter count.
//
//   divergence_guard_bench [--model tf_tutorial_cnn] [--optimizer adam|sgd] [--reps 200]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "divergence_guard.h"
#include "network.h"
#include "optimizer.h"
#include "timing.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "tf_tutorial_cnn", optimizer = "adam";
  int reps = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--model") model = argv[i + 1];
    else if (flag == "--optimizer") optimizer = argv[i + 1];
    else if (flag == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: divergence_guard_bench [--model M] [--optimizer adam|sgd] [--reps N]\n");
      return 2;
    }
  }
  const ts::NetworkSpec net = ts::build_network(model);
  ts::OptimizerConfig cfg;
  cfg.kind = optimizer;
  auto opt = ts::make_optimizer(cfg, net.num_params);
  std::vector<float> params(net.num_params), grad(net.num_params);
  for (size_t i = 0; i < params.size(); ++i) {
    params[i] = float(i % 97) * 1e-3f;
    grad[i] = float(i % 89) * 1e-5f;
  }
  ts::DivergenceGuard guard(net);
  std::vector<double> step_s, sum_s, keep_s, check_s;
  for (int r = 0; r < reps + 10; ++r) {
    ts::Stopwatch w;
    const bool sum_ok = guard.first_nonfinite(grad.data()).empty();
    const double t_sum = w.restart();
    guard.keep(params, *opt);
    const double t_keep = w.restart();
    opt->step(params.data(), grad.data());
    const double t_step = w.restart();
    const bool state_ok = guard.check_state(params, *opt).empty();
    const double t_check = w.restart();
    if (!sum_ok || !state_ok) {
      std::fprintf(stderr, "divergence_guard_bench: the state went non-finite\n");
      return 1;
    }
    if (r < 10) continue;  // warm-up
    sum_s.push_back(t_sum);
    keep_s.push_back(t_keep);
    step_s.push_back(t_step);
    check_s.push_back(t_check);
  }
  const double guard_ms = 1e3 * (median(sum_s) + median(keep_s) + median(check_s));
  std::printf("%s, %zu parameters, %s, %d reps (medians, ms per step):\n", model.c_str(), net.num_params,
              optimizer.c_str(), reps);
  std::printf("  optimizer step        %.4f\n", 1e3 * median(step_s));
  std::printf("  check gradient sum    %.4f\n", 1e3 * median(sum_s));
  std::printf("  keep state (copy)     %.4f\n", 1e3 * median(keep_s));
  std::printf("  check params + slots  %.4f\n", 1e3 * median(check_s));
  std::printf("  guard total           %.4f\n", guard_ms);
  return 0;
}
