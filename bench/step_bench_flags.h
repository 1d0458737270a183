// step_bench's command line: its CLI11 flag table (common/cli_flags.h). Header-only so that the
// unit tests can walk the same table the benchmark parses with.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>

#include "cli_flags.h"
#include "network.h"

namespace ts {

struct StepBenchOptions {
  std::string model = "seed_cnn";
  int batch = 128, threads = 1, runs = 7, steps = 40, warmup = 10;
  std::string data, update = "adam";
  bool winograd = true;
  std::string precision = "f32";  // f32 | bf16 (ModelOptions::precision)
  bool verbose = false;
  bool help = false;
};

inline std::unique_ptr<CLI::App> step_bench_app(StepBenchOptions& o) {
  using cli::at_least;
  constexpr int kMost = 1000000;
  auto app = cli::new_app(
      "step_bench",
      "usage: step_bench [--model seed_cnn|tf_tutorial_cnn] [--batch 128] [--threads 1]\n"
      "                  [--runs 7] [--steps 40] [--warmup 10] [--data DIR]\n"
      "                  [--update adam|none] [--direct] [--verbose]\n",
      "Images/s of full in-process training steps for one network, batch size and thread count: "
      "the median of repeated timed runs after warm-up, with per-phase times and GFLOP/s.");
  CLI::App& a = *app;
  cli::group(a, "Flags");
  a.add_option("--model", o.model, "the network (common/network.h)")
      ->type_name("seed_cnn|tf_tutorial_cnn")->capture_default_str();
  a.add_option("--batch", o.batch, "images per step")
      ->type_name("B")->transform(at_least(1, kMost))->capture_default_str();
  a.add_option("--threads", o.threads, "OpenMP threads (re-executes with OMP_* set)")
      ->type_name("T")->transform(at_least(1, kMost))->capture_default_str();
  a.add_option("--runs", o.runs, "timed runs; the median is reported")
      ->type_name("N")->transform(at_least(1, kMost))->capture_default_str();
  a.add_option("--steps", o.steps, "steps per timed run")
      ->type_name("N")->transform(at_least(1, kMost))->capture_default_str();
  a.add_option("--warmup", o.warmup, "untimed steps first")
      ->type_name("N")->transform(at_least(0, kMost))->capture_default_str();
  a.add_option("--data", o.data,
               "CIFAR-10 binary version (default: CIFAR10_DIR, else a generated CIFAR-shaped set)")
      ->type_name("DIR");
  a.add_option("--update", o.update, "the optimizer step after backward: Adam, or none")
      ->type_name("adam|none")->check(cli::one_of({"adam", "none"}))->capture_default_str();
  a.add_flag_callback("--direct", [&o] { o.winograd = false; }, "direct convolution only (no Winograd)");
  a.add_option("--precision", o.precision, "activations and weights: f32, or bf16 (avx512_bf16)")
      ->type_name("f32|bf16")->check(cli::one_of({"f32", "bf16"}))->capture_default_str();
  a.add_flag("--verbose", o.verbose, "list the oneDNN implementation of every layer");
  cli::add_help(a, "Flags");
  return app;
}

// argv[1..argc); -h/--help sets help. Throws UsageError naming the flag (an unknown --model too).
inline StepBenchOptions parse_step_bench_options(int argc, char** argv) {
  StepBenchOptions o;
  const auto app = step_bench_app(o);
  o.help = !cli::parse(*app, argc, argv, 1);
  if (o.help) return o;
  try {
    build_network(o.model);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--model: ") + e.what());
  }
  return o;
}

}  // namespace ts
