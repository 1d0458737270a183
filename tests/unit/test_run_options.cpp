#include <CLI/CLI.hpp>
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

// The help text names the flag as a whole word ("--listen, --bind HOST").
bool names_flag(const std::string& help, const std::string& flag) {
  for (const char* after : {" ", ",", "\n"})
    if (help.find(flag + after) != std::string::npos) return true;
  return false;
}

std::string synthetic_refusal(std::vector<std::string> args) {
  std::vector<char*> argv;
  static char prog[] = "threadsplit";
  static char sub[] = "make-synthetic-data";
  argv.push_back(prog);
  argv.push_back(sub);
  for (auto& a : args) argv.push_back(&a[0]);
  try {
    ts::parse_synthetic_data_options(int(argv.size()), argv.data());
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
  CHECK_THAT(refusal({"--external-workers", "2", "--inter-op", "2", "--data", "/d"}),
             Catch::Contains("--external-workers replaces --procs/--threads/--inter-op"));
  CHECK_THAT(refusal({"--inter-op", "0", "--data", "/d"}), Catch::Contains("--inter-op"));
  CHECK_THAT(refusal({"--data-plane", "pipe", "--data", "/d"}),
             Catch::Contains("--data-plane must be auto, shm or grpc, got 'pipe'"));
  CHECK_THAT(refusal({"--data-plane", "shm", "--external-workers", "2", "--data", "/d"}),
             Catch::Contains("--data-plane shm needs spawned workers"));
  CHECK_THAT(refusal({"--data-plane", "shm", "--bucket-kb", "64", "--data", "/d"}),
             Catch::Contains("with --data-plane shm there is no transfer to overlap"));
}

TEST_CASE("the help text lists every flag with its default", "[options]") {
  const std::string help = ts::usage_text("threadsplit");
  for (const char* flag : {"--procs", "--threads", "--cores", "--epochs", "--batch", "--batch-per-worker",
                           "--lr", "--optimizer", "--momentum", "--seed", "--augment", "--model",
                           "--data", "--port", "--report", "--steps", "--init", "--save",
                           "--no-shuffle", "--eval-every", "--loader-threads", "--external-workers"})
    CHECK_THAT(help, Catch::Contains(flag));
  CHECK_THAT(help, Catch::Contains("(default 128)"));
  CHECK_THAT(help, Catch::Contains("(default adam)"));
  CHECK_THAT(help, Catch::Contains("threadsplit sweep --data DIR"));
  CHECK_THAT(help, Catch::Contains("threadsplit make-synthetic-data DIR [--seed N]"));
  CHECK_THAT(help, Catch::Contains("SIGTERM") && Catch::Contains("128 + signo"));
  CHECK_THAT(help, Catch::Contains("Exit status:") && Catch::Contains("diverged"));  // wrapped: single words

  // Every flag of the table that parses, not a list kept by hand.
  ts::RunOptions o;
  const auto app = ts::run_options_app(o, "threadsplit");
  const auto options = app->get_options();
  size_t long_names = 0;  // the hand-written parser this table replaced had 47
  for (const CLI::Option* opt : options) {
    long_names += opt->get_lnames().size();
    INFO(opt->get_name());
    CHECK_FALSE(opt->get_lnames().empty());
    for (const std::string& name : opt->get_lnames()) CHECK(names_flag(help, "--" + name));
    CHECK_FALSE(opt->get_description().empty());
    if (opt->get_type_size() != 0 && !opt->get_default_str().empty())
      CHECK_THAT(help, Catch::Contains("(default " + opt->get_default_str() + ")"));
  }
  CHECK(long_names >= 47);
  CHECK(app->get_options([](CLI::Option* x) { return x->get_default_str() == "0.001"; }).size() == 1);
  CHECK_THAT(app->help(), Catch::Equals(help));
}

TEST_CASE("number flags are refused out of range, naming the flag and the value", "[options]") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--procs", "1025"}, "--procs must be at most 1024, got 1025"},
      {{"--threads", "4097"}, "--threads must be at most 4096, got 4097"},
      {{"--threads", "2.5"}, "--threads expects a whole number, got '2.5'"},
      {{"--external-workers", "-1"}, "--external-workers must be at least 0, got -1"},
      {{"--epochs", "3x"}, "--epochs expects a number, got '3x'"},  // a fraction is allowed (9.9)
      {{"--batch", "0"}, "--batch must be at least 1, got 0"},
      {{"--batch", "50001"}, "--batch must be at most 50000, got 50001"},
      {{"--batch-per-worker", "-1"}, "--batch-per-worker must be at least 0, got -1"},
      {{"--batch-per-worker", "60000"}, "--batch-per-worker must be at most 50000, got 60000"},
      {{"--lr", "0"}, "--lr must be positive, got 0"},
      {{"--lr", "inf"}, "--lr expects a number, got 'inf'"},
      {{"--lr", "1e999"}, "--lr expects a number, got '1e999'"},
      {{"--momentum", "1"}, "--momentum must be in [0, 1), got 1"},
      {{"--momentum", "x"}, "--momentum expects a number, got 'x'"},
      {{"--seed", "-1"}, "--seed must be at least 0, got -1"},
      {{"--seed", "99999999999999999999"}, "--seed expects a whole number"},
      {{"--steps", "-1"}, "--steps must be at least 0, got -1"},
      {{"--eval-every", "-1"}, "--eval-every must be at least 0, got -1"},
      {{"--eval-batch", "0"}, "--eval-batch must be at least 1, got 0"},
      {{"--loader-threads", "65"}, "--loader-threads must be at most 64, got 65"},
      {{"--port", "-1"}, "--port must be in 0..65535, got -1"},
      {{"--port", "http"}, "--port expects a whole number, got 'http'"},
      {{"--connect-timeout", "0"}, "--connect-timeout must be positive, got 0"},
      {{"--step-timeout", "-5"}, "--step-timeout must be positive, got -5"},
      {{"--step-timeout", "nan"}, "--step-timeout expects a number, got 'nan'"},
      {{"--failure-grace", "3601"}, "--failure-grace must be in (0, 3600], got 3601"},
      {{"--failure-grace", "0"}, "--failure-grace must be in (0, 3600], got 0"},
      {{"--checkpoint-keep", "0"}, "--checkpoint-keep must be at least 1, got 0"},
      {{"--checkpoint-every", "0"}, "--checkpoint-every expects a step count K or Ne for epochs, got '0'"},
      {{"--checkpoint-every", "e"}, "--checkpoint-every expects a step count K or Ne for epochs, got 'e'"},
      {{"--warmup-steps", "-1"}, "--warmup-steps must be at least 0, got -1"},
      {{"--autotune-steps", "-1"}, "--autotune-steps must be at least 0, got -1"},
      {{"--autotune-rounds", "0"}, "--autotune-rounds must be at least 1, got 0"},
      {{"--autotune-time", "0"}, "--autotune-time must be positive, got 0"},
      {{"--on-worker-failure", "retry"}, "--on-worker-failure must be abort or continue, got 'retry'"},
      {{"--progress", "maybe"}, "--progress must be auto, on or off, got 'maybe'"},
      {{"--resume=1"}, "--resume takes no value"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> with_data = args;
    with_data.insert(with_data.end(), {"--data", "/d"});
    INFO(args[0]);
    CHECK_THAT(refusal(with_data), Catch::StartsWith(message));
  }
  CHECK_THAT(refusal({"--data", "/d", "--eval-batch"}), Catch::StartsWith("--eval-batch needs a value"));
}

TEST_CASE("whole numbers are read in base 10, and the last of a repeated flag wins", "[options]") {
  const ts::RunOptions o = parse({"--procs", "010", "--data", "/d"});
  CHECK(o.procs == 10);
  CHECK_THAT(refusal({"--threads", "0x10", "--data", "/d"}), Catch::Contains("--threads expects a whole number"));
  const ts::RunOptions r = parse({"--epochs", "2", "--epochs", "5", "--listen", "0.0.0.0", "--bind", "::1"});
  CHECK(r.epochs == 5);
  CHECK(r.listen == "::1");
  const ts::RunOptions big = parse({"--seed", "9223372036854775807", "--steps", "5000000000", "--data", "/d"});
  CHECK(big.seed == 9223372036854775807ull);
  CHECK(big.steps == 5000000000);
  CHECK(parse({"--help"}).help);
  CHECK(parse({"-h"}).help);
  CHECK_FALSE(parse({}).help);
  CHECK(parse({"--resume"}).resume);
  CHECK(parse({"--autotune"}).autotune);
}

TEST_CASE("checks that need only the flags refuse before anything starts", "[options]") {
  // These were checked once the run was being prepared (coordinator_main.cpp); the texts are kept.
  CHECK_THAT(refusal({"--model", "resnet", "--data", "/d"}), Catch::Contains("--model: unknown model 'resnet'"));
  CHECK_THAT(refusal({"--augment", "rotate", "--data", "/d"}), Catch::StartsWith("--augment: "));
  CHECK_THAT(refusal({"--optimizer", "rmsprop", "--data", "/d"}),
             Catch::Contains("--optimizer must be one of adam, sgd, got 'rmsprop'"));
  CHECK_THAT(refusal({"--momentum", "0.9", "--data", "/d"}),
             Catch::Contains("--momentum applies to --optimizer sgd only"));
  CHECK(refusal({"--momentum", "0.9", "--optimizer", "sgd", "--data", "/d"}) == "(accepted)");
  CHECK_THAT(refusal({"--cores", "0,0", "--data", "/d"}), Catch::Contains("--cores: ") && Catch::Contains("names core 0 twice"));
  CHECK_THAT(refusal({"--cores", "3-1", "--data", "/d"}), Catch::StartsWith("--cores: "));
  CHECK_THAT(refusal({"--checkpoint-every", "5", "--data", "/d"}), Catch::Contains("--checkpoint-every needs --checkpoint-dir"));
  CHECK_THAT(refusal({"--resume", "--data", "/d"}), Catch::Contains("--resume needs --checkpoint-dir"));
  CHECK_THAT(refusal({"--resume", "--checkpoint-dir", "/c", "--init", "x", "--data", "/d"}),
             Catch::Contains("--resume and --init"));
  CHECK_THAT(refusal({"--tls-cert", "c.pem", "--data", "/d"}), Catch::Contains("--tls-cert and --tls-key go together"));
  CHECK_THAT(refusal({"--tls-ca", "ca.pem", "--data", "/d"}), Catch::Contains("--tls-ca needs --tls-cert"));
  CHECK_THAT(refusal({"--steps", "5", "--warmup-steps", "5", "--data", "/d"}),
             Catch::Contains("--warmup-steps 5 leaves none of --steps 5 to time"));
  CHECK_THAT(refusal({"--autotune", "--procs", "2", "--data", "/d"}), Catch::Contains("--autotune chooses the split"));
  CHECK(refusal({"--augment", "flip,crop", "--model", "tf_tutorial_cnn", "--cores", "0", "--data", "/d"}) ==
        "(accepted)");
}

TEST_CASE("placement flags name their choices, and hand-started workers refuse them", "[options]") {
  CHECK_THAT(refusal({"--placement", "scatter", "--data", "/d"}),
             Catch::Contains("--placement: unknown placement 'scatter': choose numa, compact or spread"));
  CHECK_THAT(refusal({"--smt", "on", "--data", "/d"}), Catch::Contains("--smt: unknown SMT choice 'on': choose avoid or use"));
  CHECK_THAT(refusal({"--placement", "compact", "--external-workers", "2", "--data", "/d"}),
             Catch::Contains("--placement and --smt do not apply") && Catch::Contains("mpirun --bind-to core"));
  CHECK(refusal({"--placement", "spread", "--smt", "use", "--data", "/d"}) == "(accepted)");
  const ts::RunOptions o = parse({"--data", "/d"});
  CHECK(o.placement == "numa");
  CHECK(o.smt == "avoid");
}

TEST_CASE("exchange-only runs turn evaluation off and refuses the flags that only shape the compute",
          "[options]") {
  const ts::RunOptions o = parse({"--exchange-only", "--data", "/d"});
  CHECK(o.exchange_only);
  CHECK(o.eval_every == 0);  // no model, so nothing to evaluate
  CHECK(refusal({"--exchange-only", "--data", "/d"}) == "(accepted)");
  CHECK(refusal({"--exchange-only", "--eval-every", "0", "--data", "/d"}) == "(accepted)");
  // airbench94's recipe sets --tta, --augment and --normalize; only flags given are refused.
  CHECK(refusal({"--exchange-only", "--model", "airbench94", "--procs", "4", "--data", "/d"}) == "(accepted)");
  CHECK(parse({"--eval-every", "2", "--data", "/d"}).eval_every == 2);
  CHECK(refusal({"--exchange-only", "--eval-every", "2", "--data", "/d"}) ==
        "--exchange-only runs no evaluation (the workers have no model): drop --eval-every 2 or give "
        "--eval-every 0");
  for (const std::string flag : {"--eval-batch", "--tta", "--augment", "--loader-threads", "--precision",
                                 "--label-smoothing"}) {
    const std::string value = flag == "--augment" ? "flip" : flag == "--precision" ? "f32"
                              : flag == "--label-smoothing" ? "0.1" : "1";
    INFO(flag);
    CHECK(refusal({"--exchange-only", flag, value, "--data", "/d"}) ==
          "--exchange-only skips the workers' compute, so " + flag +
              " would change nothing: drop it (or drop --exchange-only to train)");
  }
  CHECK_THAT(refusal({"--exchange-only", "--normalize", "--data", "/d"}),
             Catch::Contains("so --normalize would change nothing"));
  CHECK_THAT(refusal({"--exchange-only", "--autotune", "--data", "/d"}),
             Catch::Contains("--autotune with --exchange-only would choose a split by the exchange alone"));
  CHECK(names_flag(ts::usage_text("threadsplit"), "--exchange-only"));
}

TEST_CASE("make-synthetic-data takes DIR and a checked --seed", "[options]") {
  std::vector<std::string> args = {"threadsplit", "make-synthetic-data", "/tmp/x", "--seed", "7"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(&a[0]);
  const ts::SyntheticDataOptions o = ts::parse_synthetic_data_options(int(argv.size()), argv.data());
  CHECK(o.dir == "/tmp/x");
  CHECK(o.seed == 7);
  CHECK_FALSE(o.help);
  CHECK(synthetic_refusal({"/tmp/x"}) == "(accepted)");
  CHECK_THAT(synthetic_refusal({"/tmp/x", "--seed", "x"}), Catch::StartsWith("--seed expects a whole number, got 'x'"));
  CHECK_THAT(synthetic_refusal({"/tmp/x", "--seed", "-3"}), Catch::StartsWith("--seed must be at least 0, got -3"));
  CHECK_THAT(synthetic_refusal({"/tmp/x", "--seed"}), Catch::StartsWith("--seed needs a value"));
  CHECK_THAT(synthetic_refusal({}), Catch::StartsWith("DIR is required"));
  CHECK_THAT(synthetic_refusal({"--seed", "3"}), Catch::StartsWith("DIR is required"));
  CHECK_THAT(synthetic_refusal({"/tmp/x", "--bogus"}), Catch::Contains("unknown argument '--bogus'"));
  CHECK_THAT(synthetic_refusal({"/tmp/x", "/tmp/y"}), Catch::Contains("unknown argument '/tmp/y'"));

  const std::string help = ts::synthetic_data_usage_text("threadsplit");
  CHECK_THAT(help, Catch::StartsWith("usage: threadsplit make-synthetic-data DIR [--seed N]"));
  ts::SyntheticDataOptions d;
  const auto app = ts::synthetic_data_app(d, "threadsplit");
  for (const CLI::Option* opt : app->get_options()) {
    INFO(opt->get_name());
    for (const std::string& name : opt->get_lnames()) CHECK(names_flag(help, "--" + name));
    if (opt->get_type_size() != 0 && !opt->get_default_str().empty())
      CHECK_THAT(help, Catch::Contains("(default " + opt->get_default_str() + ")"));
  }
  CHECK_THAT(help, Catch::Contains("  DIR "));
}

TEST_CASE("airbench94's recipe fills every flag not given, and only those", "[options]") {
  const ts::RunOptions o = parse({"--model", "airbench94", "--data", "/d"});
  CHECK(o.batch == 1024);
  CHECK(o.epochs == 10);
  CHECK(o.epochs_exact == Approx(9.9));
  CHECK(o.optimizer == "sgd");
  CHECK(o.momentum == Approx(0.85));
  CHECK(o.nesterov);
  // kilostep = 1024 x (1 + 1 / 0.15) = 7850.67: lr = 11.5 / kilostep; decay per step
  // 0.0153 x 1024 / kilostep = 0.0019957, over lr: PyTorch's weight_decay 1.36243.
  CHECK(o.lr == Approx(11.5 / 7850.6666667).epsilon(1e-9));
  CHECK(o.weight_decay == Approx(0.0153 * 1024 / 11.5).epsilon(1e-9));
  CHECK(o.bias_lr_scale == 64);
  CHECK(o.lr_schedule == "triangular");
  CHECK(o.label_smoothing == Approx(0.2));
  CHECK(o.loss == "sum");
  CHECK(o.normalize);
  CHECK(o.validation_split == 0);
  CHECK(o.drop_last);
  CHECK(o.whiten_bias_epochs == 3);
  CHECK(o.lookahead_every == 5);
  CHECK(o.tta == 2);
  CHECK_NOTHROW(ts::validate_options(o));

  // What is given wins; what depends on it follows it (the decay scales with the batch).
  const ts::RunOptions g = parse({"--model", "airbench94", "--data", "/d", "--batch", "512",
                                  "--epochs", "2", "--no-normalize", "--tta", "0", "--keep-last",
                                  "--lr", "0.01"});
  CHECK(g.batch == 512);
  CHECK(g.epochs == 2);
  CHECK(g.epochs_exact == 0);
  CHECK_FALSE(g.normalize);
  CHECK(g.tta == 0);
  CHECK_FALSE(g.drop_last);
  CHECK(g.lr == 0.01);
  CHECK(g.weight_decay == Approx(0.0153 * 512 / 11.5).epsilon(1e-9));
  CHECK(g.nesterov);

  // The older nets keep today's defaults.
  const ts::RunOptions seed = parse({"--data", "/d"});
  CHECK(seed.batch == 128);
  CHECK(seed.optimizer == "adam");
  CHECK_FALSE(seed.normalize);
  CHECK(seed.validation_split == Approx(0.1));
  CHECK(seed.epochs_exact == 0);
}

TEST_CASE("airbench_sgd turns the recipe's per-1024 units into PyTorch's", "[options]") {
  const ts::RecipeSgd r = ts::airbench_sgd(11.5, 0.0153, 0.85, 1024);
  CHECK(r.lr == Approx(0.00146484).epsilon(1e-5));
  CHECK(r.lr * r.weight_decay == Approx(0.00199567).epsilon(1e-5));  // decay per step
  const ts::RecipeSgd half = ts::airbench_sgd(11.5, 0.0153, 0.85, 512);
  CHECK(half.lr == r.lr);                                   // summed loss: lr is per example
  CHECK(half.weight_decay == Approx(r.weight_decay / 2));   // decay per example
}

TEST_CASE("the recipe's flags are checked against the optimizer and the network", "[options]") {
  CHECK_THAT(refusal({"--data", "/d", "--weight-decay", "0.1"}), Catch::Contains("--weight-decay applies to --optimizer sgd"));
  CHECK_THAT(refusal({"--data", "/d", "--optimizer", "sgd", "--nesterov"}), Catch::Contains("--nesterov needs --optimizer sgd with --momentum above 0"));
  CHECK_THAT(refusal({"--data", "/d", "--bn-group", "32"}), Catch::Contains("seed_cnn has no batch norm"));
  CHECK_THAT(refusal({"--data", "/d", "--model", "airbench94", "--bn-group", "1"}), Catch::Contains("at least 2"));
  CHECK_THAT(refusal({"--data", "/d", "--whiten-bias-epochs", "2"}), Catch::Contains("no whitening layer"));
  CHECK_THAT(refusal({"--data", "/d", "--precision", "f16"}), Catch::Contains("--precision"));
  CHECK_THAT(refusal({"--data", "/d", "--tta", "3"}), Catch::Contains("--tta"));
  CHECK_THAT(refusal({"--data", "/d", "--epochs", "0.5"}), Catch::Contains("--epochs must be at least 1"));
  const ts::RunOptions f = parse({"--data", "/d", "--epochs", "2.5"});
  CHECK(f.epochs == 3);
  CHECK(f.epochs_exact == 2.5);
}
