// The flag tables of threadsplit sweep, threadsplit_worker and step_bench (threadsplit's own is
// in test_run_options.cpp), and what common/cli_flags.h gives all four: numbers refused in one
// sentence naming the flag, --help written from the table.
#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "../../bench/step_bench_flags.h"
#include "../../worker/worker_flags.h"
#include "cli_flags.h"
#include "sweep_command.h"

namespace {

// Calls parse(argc, argv) with {program, prefix..., args...}; returns the UsageError's text,
// or "(accepted)".
std::string refusal(const std::function<void(int, char**)>& parse, std::vector<std::string> prefix,
                    const std::vector<std::string>& args) {
  prefix.insert(prefix.begin(), "program");
  prefix.insert(prefix.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : prefix) argv.push_back(&a[0]);
  try {
    parse(int(argv.size()), argv.data());
  } catch (const ts::UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

std::string sweep_refusal(const std::vector<std::string>& args) {
  return refusal([](int argc, char** argv) { ts::parse_sweep_args(argc, argv); }, {"sweep"}, args);
}
std::string worker_refusal(const std::vector<std::string>& args) {
  return refusal([](int argc, char** argv) { ts::parse_worker_flags(argc, argv); }, {}, args);
}
std::string bench_refusal(const std::vector<std::string>& args) {
  return refusal([](int argc, char** argv) { ts::parse_step_bench_options(argc, argv); }, {}, args);
}

// The help text names the flag as a whole word ("--listen, --bind HOST").
bool names_flag(const std::string& help, const std::string& flag) {
  for (const char* after : {" ", ",", "\n"})
    if (help.find(flag + after) != std::string::npos) return true;
  return false;
}

// For every option of the table: its names, its explanation, its range and its default appear
// in the help text.
void check_help_lists_table(CLI::App& app, const std::string& help) {
  for (const CLI::Option* opt : app.get_options()) {
    INFO(opt->get_name());
    CHECK_FALSE(opt->get_lnames().empty());
    for (const std::string& name : opt->get_lnames()) CHECK(names_flag(help, "--" + name));
    CHECK_FALSE(opt->get_description().empty());
    const std::string range = ts::cli::range_text(*opt);
    if (!range.empty()) CHECK_THAT(help, Catch::Contains("[" + range + "]"));
    if (opt->get_type_size() != 0 && !opt->get_default_str().empty())
      CHECK_THAT(help, Catch::Contains("(default " + opt->get_default_str() + ")"));
  }
}

}  // namespace

TEST_CASE("number validators read base 10 and refuse in one sentence after the flag's name", "[cli]") {
  const auto made = ts::cli::new_app("prog", "usage: prog\n", "");
  CLI::App& app = *made;
  int n = 0, m = 0;
  double x = 0, f = 0;
  app.add_option("--n", n)->transform(ts::cli::at_least(1, 100));
  app.add_option("--m", m)->transform(ts::cli::in_range(0, 9));
  app.add_option("--x", x)->transform(ts::cli::positive(10));
  app.add_option("--f", f)->transform(ts::cli::real_in(0, 1, true));
  auto refused = [&](const std::vector<std::string>& args) -> std::string {
    app.clear();
    try {
      ts::cli::parse(app, args);
    } catch (const ts::UsageError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  CHECK(refused({"--n", "010", "--m", "9", "--x", "10", "--f", "0"}) == "(accepted)");
  CHECK(n == 10);
  CHECK(m == 9);
  CHECK(x == 10);
  CHECK(refused({"--n", "0"}) == "--n must be at least 1, got 0");
  CHECK(refused({"--n", "101"}) == "--n must be at most 100, got 101");
  CHECK(refused({"--n", "0x10"}) == "--n expects a whole number, got '0x10'");
  CHECK(refused({"--n", ""}) == "--n expects a whole number, got ''");
  CHECK(refused({"--n", "99999999999999999999"}) == "--n expects a whole number, got '99999999999999999999'");
  CHECK(refused({"--m", "10"}) == "--m must be in 0..9, got 10");
  CHECK(refused({"--m", "-1"}) == "--m must be in 0..9, got -1");
  CHECK(refused({"--x", "0"}) == "--x must be in (0, 10], got 0");
  CHECK(refused({"--x", "10.5"}) == "--x must be in (0, 10], got 10.5");
  CHECK(refused({"--x", "1,5"}) == "--x expects a number, got '1,5'");
  CHECK(refused({"--f", "1"}) == "--f must be in [0, 1), got 1");
  CHECK(refused({"--f", "-0.1"}) == "--f must be in [0, 1), got -0.1");
  CHECK(refused({"--f", "NaN"}) == "--f expects a number, got 'NaN'");
  // Just above the midpoint between 1 and the next double: strtod rounds up, while reading
  // through long double (as CLI11 does) lands on the midpoint and rounds to even, down to 1.
  const std::string above_midpoint = "1.000000000000000111022302462515654042363166809082031251";
  CHECK(refused({"--x", above_midpoint}) == "(accepted)");
  CHECK(x == std::strtod(above_midpoint.c_str(), nullptr));
  CHECK(x > 1.0);
  CHECK(refused({"--n"}) == "--n needs a value (see prog --help)");
  CHECK(refused({"--nope"}) == "unknown argument '--nope' (see prog --help)");
}

TEST_CASE("sweep: its flags are one table, and bad numbers are refused naming the flag", "[cli][sweep]") {
  ts::SweepArgs a;
  const auto app = ts::sweep_app(a);
  const std::string help = ts::sweep_usage_text();
  CHECK_THAT(help, Catch::StartsWith("usage: threadsplit sweep --data DIR [flags]"));
  check_help_lists_table(*app, help);
  CHECK_THAT(help, Catch::Contains("(default seed_cnn=200,tf_tutorial_cnn=40)"));
  CHECK_THAT(help, Catch::Contains("(default seed_cnn,tf_tutorial_cnn)"));

  std::vector<std::string> args = {"threadsplit", "sweep", "--data", "/d", "--models", "seed_cnn",
                                   "--steps", "seed_cnn=7", "--loader-threads", "1,2", "--seed", "9",
                                   "--busy-share", "0.5", "--busy-retries", "0", "--warmup-steps", "0",
                                   "--trial-timeout", "30", "--over"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(&s[0]);
  const ts::SweepArgs s = ts::parse_sweep_args(int(argv.size()), argv.data());
  CHECK(s.data == "/d");
  CHECK(s.sweep.models == std::vector<std::string>{"seed_cnn"});
  CHECK(s.sweep.steps.at("seed_cnn") == 7);
  CHECK(s.sweep.loader_threads == std::vector<int>{1, 2});
  CHECK(s.seed == 9);
  CHECK(s.busy_share == 0.5);
  CHECK(s.busy_retries == 0);
  CHECK(s.sweep.warmup_steps == 0);
  CHECK(s.trial_timeout_s == 30);
  CHECK(s.sweep.over);
  CHECK_FALSE(s.sweep.under);
  CHECK_FALSE(s.help);
  CHECK(s.out == "sweep-results");

  CHECK_THAT(sweep_refusal({}), Catch::Contains("--data DIR is required"));
  CHECK(sweep_refusal({"--help"}) == "(accepted)");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--seed=x", "--seed expects a whole number, got 'x'"},
      {"--seed=-1", "--seed must be at least 0, got -1"},
      {"--trial-timeout=0", "--trial-timeout must be positive, got 0"},
      {"--trial-timeout=ten", "--trial-timeout expects a number, got 'ten'"},
      {"--busy-share=1.5", "--busy-share must be in [0, 1], got 1.5"},
      {"--busy-share=x", "--busy-share expects a number, got 'x'"},
      {"--busy-retries=-1", "--busy-retries must be at least 0, got -1"},
      {"--repeats=0", "--repeats must be at least 1, got 0"},
      {"--batch=5000", "--batch must be at most 4096, got 5000"},
      {"--batch-per-worker=0", "--batch-per-worker must be at least 1, got 0"},
      {"--warmup-steps=x", "--warmup-steps expects a whole number, got 'x'"},
      {"--loader-threads=0", "--loader-threads expects whole numbers >= 1"},
      {"--steps=seed_cnn=x", "--steps expects whole numbers >= 1"},
      {"--under=1", "--under takes no value"},
      {"--bogus", "unknown argument '--bogus' (see threadsplit sweep --help)"},
  };
  for (const auto& [arg, message] : bad) {
    INFO(arg);
    CHECK_THAT(sweep_refusal({"--data", "/d", arg}), Catch::StartsWith(message));
  }
}

TEST_CASE("worker: its flags are one table, and bad numbers are refused naming the flag", "[cli][worker]") {
  ts::WorkerFlags f;
  const auto app = ts::worker_app(f);
  const std::string help = app->help();
  CHECK_THAT(help, Catch::StartsWith("usage: threadsplit_worker --coordinator HOST:PORT"));
  CHECK_THAT(help, Catch::Contains("THREADSPLIT_TLS_CA"));
  check_help_lists_table(*app, help);
  CHECK_THAT(help, Catch::Contains("--coordinator HOST:PORT\n"));

  CHECK(worker_refusal({"--coordinator", "h:1", "--rank", "3", "--threads", "2", "--connect-timeout", "0.5"}) ==
        "(accepted)");
  CHECK_THAT(worker_refusal({}), Catch::Contains("--coordinator HOST:PORT is required"));
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--rank", "-1"}, "--rank must be at least 0, got -1"},
      {{"--rank", "one"}, "--rank expects a whole number, got 'one'"},
      {{"--threads", "-1"}, "--threads must be at least 0, got -1"},
      {{"--threads", "5000"}, "--threads must be at most 4096, got 5000"},
      {{"--connect-timeout", "0"}, "--connect-timeout must be positive, got 0"},
      {{"--connect-timeout", "1s"}, "--connect-timeout expects a number, got '1s'"},
      {{"--bogus"}, "unknown argument '--bogus' (see threadsplit_worker --help)"},
  };
  for (const auto& [args, message] : bad) {
    std::vector<std::string> all = {"--coordinator", "h:1"};
    all.insert(all.end(), args.begin(), args.end());
    INFO(args[0]);
    CHECK(worker_refusal(all) == message);
  }
}

TEST_CASE("step_bench: its flags are one table, and bad numbers are refused naming the flag", "[cli][bench]") {
  ts::StepBenchOptions o;
  const auto app = ts::step_bench_app(o);
  const std::string help = app->help();
  CHECK_THAT(help, Catch::StartsWith("usage: step_bench"));
  check_help_lists_table(*app, help);

  CHECK(bench_refusal({"--batch", "64", "--threads", "2", "--warmup", "0", "--direct", "--update", "none"}) ==
        "(accepted)");
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--batch", "0"}, "--batch must be at least 1, got 0"},
      {{"--threads", "x"}, "--threads expects a whole number, got 'x'"},
      {{"--runs", "1000001"}, "--runs must be at most 1000000, got 1000001"},
      {{"--steps", "-2"}, "--steps must be at least 1, got -2"},
      {{"--warmup", "-1"}, "--warmup must be at least 0, got -1"},
      {{"--update", "sgd"}, "--update must be adam or none, got 'sgd'"},
      {{"--model", "resnet"}, "--model: unknown model 'resnet'"},
      {{"--verbose=yes"}, "--verbose takes no value"},
  };
  for (const auto& [args, message] : bad) {
    INFO(args[0]);
    CHECK_THAT(bench_refusal(args), Catch::StartsWith(message));
  }
}
