#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "run_options.h"

namespace {

ts::RunOptions parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  static char prog[] = "threadsplit";
  argv.push_back(prog);
  for (auto& a : args) argv.push_back(&a[0]);
  return ts::parse_run_options(int(argv.size()), argv.data());
}

std::string refusal(std::vector<std::string> args) {
  try {
    ts::validate_options(parse(std::move(args)));
  } catch (const ts::UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("defaults follow the Keras example", "[options]") {
  const ts::RunOptions o = parse({});
  CHECK(o.optimizer == "adam");
  CHECK(o.lr == 1e-3);
  CHECK(o.batch == 128);
  CHECK(o.epochs == 3);
  CHECK(o.augment == "none");
  CHECK(o.model == "seed_cnn");
  CHECK(o.procs == 0);    // chosen from the cores at run time
  CHECK(o.threads == 0);
  CHECK(o.shuffle);
  CHECK(o.port == 0);
}

TEST_CASE("flags take values as --flag V or --flag=V", "[options]") {
  const ts::RunOptions o =
      parse({"--procs", "2", "--threads=3", "--cores", "0-5", "--lr", "0.05", "--optimizer=sgd",
             "--momentum", "0.9", "--no-shuffle", "--augment", "flip,crop", "--steps", "50",
             "--batch-per-worker", "32", "--data", "/d", "--eval-every", "0"});
  CHECK(o.procs == 2);
  CHECK(o.threads == 3);
  CHECK(o.cores == "0-5");
  CHECK(o.lr == 0.05);
  CHECK(o.optimizer == "sgd");
  CHECK(o.momentum == 0.9);
  CHECK_FALSE(o.shuffle);
  CHECK(o.augment == "flip,crop");
  CHECK(o.steps == 50);
  CHECK(o.batch_per_worker == 32);
  CHECK(o.eval_every == 0);
  CHECK_NOTHROW(ts::validate_options(o));
}

TEST_CASE("bad flags are refused with one sentence naming the flag", "[options]") {
  CHECK_THAT(refusal({"--procs"}), Catch::Contains("--procs needs a value"));
  CHECK_THAT(refusal({"--procs", "x", "--data", "/d"}), Catch::Contains("--procs expects a whole number"));
  CHECK_THAT(refusal({"--lr", "1e", "--data", "/d"}), Catch::Contains("--lr expects a number"));
  CHECK_THAT(refusal({"--frobnicate"}), Catch::Contains("unknown argument '--frobnicate'"));
  CHECK_THAT(refusal({"--no-shuffle=1"}), Catch::Contains("--no-shuffle takes no value"));
  CHECK_THAT(refusal({"--procs", "0", "--data", "/d"}), Catch::Contains("--procs must be at least 1"));
  CHECK_THAT(refusal({"--threads", "0", "--data", "/d"}), Catch::Contains("--threads must be at least 1"));
  CHECK_THAT(refusal({"--epochs", "0", "--data", "/d"}), Catch::Contains("--epochs must be at least 1"));
  CHECK_THAT(refusal({"--port", "70000", "--data", "/d"}), Catch::Contains("--port must be in 0..65535"));
  CHECK_THAT(refusal({"--progress", "maybe", "--data", "/d"}), Catch::Contains("--progress"));
  CHECK_THAT(refusal({"--coordinator-priority", "high", "--data", "/d"}),
             Catch::Contains("--coordinator-priority must be auto, realtime or normal, got 'high'"));
  CHECK_THAT(refusal({}), Catch::Contains("--data DIR is required"));
  CHECK_THAT(refusal({"--external-workers", "2", "--procs", "2", "--data", "/d"}),
             Catch::Contains("--external-workers replaces --procs"));
}

TEST_CASE("--help lists every flag with its default", "[options]") {
  const std::string help = ts::usage_text("threadsplit");
  for (const char* flag : {"--procs", "--threads", "--cores", "--epochs", "--batch", "--batch-per-worker",
                           "--lr", "--optimizer", "--momentum", "--seed", "--augment", "--model",
                           "--data", "--port", "--report", "--steps", "--init", "--save",
                           "--no-shuffle", "--eval-every", "--loader-threads", "--external-workers"})
    CHECK_THAT(help, Catch::Contains(flag));
  CHECK_THAT(help, Catch::Contains("(default 128)"));
  CHECK_THAT(help, Catch::Contains("(default adam)"));
}
