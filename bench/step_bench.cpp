// Step benchmark: images/s of full in-process training steps (batch assembly from the
// memory-mapped data set, forward, loss, backward, optimizer update) for one network, batch
// size and thread count. Median of repeated timed runs after warm-up, with per-phase times
// and the achieved GFLOP/s of the convolutions and dense layers.
//
//   step_bench --model seed_cnn --batch 128 --threads 2 [--runs 7 --steps 40 --warmup 10]
//              [--data DIR] [--update adam|none] [--verbose]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "augment.h"
#include "cifar10.h"
#include "dnnl.hpp"
#include "epoch_plan.h"
#include "malloc_tuning.h"
#include "model.h"
#include "network.h"
#include "omp_setup.h"
#include "optimizer.h"
#include "process_facts.h"
#include "step_bench_flags.h"
#include "synthetic_cifar10.h"
#include "timing.h"

namespace {

// "VmRSS" -> kB, from /proc/self/status ("1234 kB"); -1 when missing.
long status_kb(const char* key) {
  const std::string v = ts::proc_field("/proc/self/status", key);
  return v.empty() ? -1 : std::atol(v.c_str());
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

int main(int argc, char** argv) {
  ts::StepBenchOptions o;
  try {
    o = ts::parse_step_bench_options(argc, argv);
  } catch (const ts::UsageError& e) {
    std::fprintf(stderr, "step_bench: %s\n", e.what());
    return 2;
  }
  if (o.help) {
    ts::StepBenchOptions defaults;
    std::fputs(ts::step_bench_app(defaults)->help().c_str(), stdout);
    return 0;
  }
  ts::reexec_with_omp_threads(o.threads, argv);  // before any OpenMP region
  ts::keep_freed_memory();

  const ts::NetworkSpec net = ts::build_network(o.model);  // checked by parse_step_bench_options
  std::string dir = o.data;
  if (dir.empty() && std::getenv("CIFAR10_DIR")) dir = std::getenv("CIFAR10_DIR");
  std::string data_note = dir;
  if (dir.empty()) {
    dir = "/tmp/threadsplit-bench-synthetic-" + std::to_string(getuid());
    ts::ensure_synthetic_cifar10(dir, 1);
    data_note = dir + " (generated)";
  }
  ts::Cifar10 data = ts::Cifar10::open(dir);

  ts::ModelOptions mo;
  mo.winograd = o.winograd;
  mo.precision = o.precision;
  ts::Model model(net, o.batch, mo);
  std::vector<float> params(net.num_params), grad(net.num_params);
  ts::glorot_uniform_init(net, 42, params.data());
  model.set_params(params.data());
  ts::OptimizerConfig oc;
  auto opt = ts::make_optimizer(oc, net.num_params);

  std::vector<float> images(size_t(o.batch) * net.input.size());
  std::vector<int32_t> labels(o.batch);
  const auto order = ts::epoch_order(42, 0, 0, 45000, true);
  size_t cursor = 0;

  struct Phase { double data = 0, fwd = 0, bwd = 0, update = 0; };
  auto step = [&](Phase& ph) {
    if (cursor + o.batch > order.size()) cursor = 0;
    ts::Stopwatch sw;
    ts::assemble_batch(data, ts::Set::kTrain, order.data() + cursor, o.batch, ts::Augment::kNone,
                       42, 0, images.data(), labels.data());
    cursor += o.batch;
    ph.data += sw.restart();
    const ts::StepStats st = model.train_step(images.data(), labels.data(), o.batch,
                                              1.f / float(o.batch), grad.data());
    sw.restart();
    ph.fwd += st.forward_s;
    ph.bwd += st.backward_s;
    if (o.update == "adam") {
      opt->step(params.data(), grad.data());
      model.set_params(params.data());
    }
    ph.update += sw.restart();
  };

  const ts::FlopCount flops = ts::count_flops(net, o.batch);
  std::printf("step_bench: %s, batch %d, %d thread(s) [%s], oneDNN %d.%d.%d, data %s\n",
              o.model.c_str(), o.batch, ts::omp_team_size(), ts::omp_environment_summary().c_str(),
              dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch, data_note.c_str());
  std::printf("  %zu parameters; %.3f GFLOP forward, %.3f GFLOP backward per step\n",
              net.num_params, flops.forward * 1e-9, flops.backward * 1e-9);
  if (o.verbose)
    for (const auto& s : model.implementation_names(o.batch)) std::printf("    %s\n", s.c_str());

  Phase warm;
  for (int i = 0; i < o.warmup; ++i) step(warm);

  std::vector<double> rate, data_ms, fwd_ms, bwd_ms, upd_ms, gflops;
  for (int r = 0; r < o.runs; ++r) {
    Phase ph;
    ts::Stopwatch sw;
    for (int i = 0; i < o.steps; ++i) step(ph);
    const double t = sw.elapsed();
    rate.push_back(double(o.batch) * o.steps / t);
    data_ms.push_back(1e3 * ph.data / o.steps);
    fwd_ms.push_back(1e3 * ph.fwd / o.steps);
    bwd_ms.push_back(1e3 * ph.bwd / o.steps);
    upd_ms.push_back(1e3 * ph.update / o.steps);
    gflops.push_back((flops.forward + flops.backward) * o.steps / (ph.fwd + ph.bwd) * 1e-9);
    std::printf("  run %d: %8.0f images/s  (data %.2f ms, forward %.2f ms, backward %.2f ms, "
                "update %.2f ms per step)\n",
                r + 1, rate.back(), data_ms.back(), fwd_ms.back(), bwd_ms.back(), upd_ms.back());
  }
  std::printf("median: %.0f images/s (min %.0f, max %.0f) over %d runs of %d steps; per step: "
              "data %.2f ms, forward %.2f ms, backward %.2f ms, update %.2f ms; "
              "%.0f GFLOP/s in forward+backward\n",
              median(rate), *std::min_element(rate.begin(), rate.end()),
              *std::max_element(rate.begin(), rate.end()), o.runs, o.steps, median(data_ms),
              median(fwd_ms), median(bwd_ms), median(upd_ms), median(gflops));
  std::printf("memory: VmRSS %ld MB, of which file-backed (mapped data set) %ld MB, anonymous %ld MB\n",
              status_kb("VmRSS") / 1024, status_kb("RssFile") / 1024, status_kb("RssAnon") / 1024);
  return 0;
}
