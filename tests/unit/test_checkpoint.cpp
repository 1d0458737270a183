// Checkpoints: bit-exact round trips, and every kind of bad file refused with its name.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "checkpoint.pb.h"
#include "network.h"
#include "optimizer.h"
#include "random.h"

using namespace ts;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

std::string tmp_path(const std::string& name) {
  const fs::path dir = fs::path(TEST_TMP_DIR) / "checkpoint";
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(out);
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.uniform() * 2.0 - 1.0);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A checkpoint of `net` with random parameters and an Adam state three steps in.
struct Fixture {
  NetworkSpec net;
  TrainingState state;
  std::unique_ptr<Optimizer> opt;

  explicit Fixture(const std::string& model, OptimizerConfig cfg = {}) : net(build_network(model)) {
    state.step = 1234;
    state.epoch = 5;
    state.step_in_epoch = 78;
    state.seed = 0xDEADBEEFCAFEF00Dull;  // above 2^63: the full uint64 range survives
    state.config_json = R"({"model": ")" + model + R"(", "lr": 0.001})";
    state.params = random_floats(net.num_params, 1);
    opt = make_optimizer(cfg, net.num_params);
    for (uint64_t t = 0; t < 3; ++t) {
      const std::vector<float> g = random_floats(net.num_params, 100 + t);
      opt->step(state.params.data(), g.data());
    }
  }
};

// Rewrites a checkpoint through `edit`, with a correct CRC, so only the edit is wrong.
void edit_checkpoint(const std::string& path, const std::function<void(threadsplit::Checkpoint&)>& edit) {
  threadsplit::Checkpoint ckpt;
  REQUIRE(ckpt.ParseFromString(read_bytes(path)));
  edit(ckpt);
  ckpt.set_crc32(0);
  std::string bytes;
  REQUIRE(ckpt.SerializeToString(&bytes));
  ckpt.set_crc32(checkpoint_crc32(bytes));
  REQUIRE(ckpt.SerializeToString(&bytes));
  write_bytes(path, bytes);
}

}  // namespace

TEST_CASE("The checkpoint CRC is the standard CRC-32 (zlib's), continuable across chunks", "[checkpoint]") {
  const std::string s = "123456789";
  const auto* b = reinterpret_cast<const Bytef*>(s.data());
  CHECK(checkpoint_crc32(s) == 0xCBF43926u);
  CHECK(crc32(crc32(0L, b, 4), b + 4, 5) == 0xCBF43926u);
  CHECK(checkpoint_crc32(std::string()) == 0u);
}

TEST_CASE("Checkpoints round-trip both networks bit for bit, with Adam state", "[checkpoint]") {
  const std::string model = GENERATE(as<std::string>{}, "seed_cnn", "tf_tutorial_cnn");
  Fixture f(model);
  // Left in TEST_TMP_DIR on purpose: scripts/read_checkpoint.py can be tried on it.
  const std::string path = tmp_path(model + ".ckpt");
  save_checkpoint(path, f.net, f.state, f.opt.get());

  const TrainingState got = load_checkpoint(path, f.net);
  CHECK(got.model == model);
  CHECK(got.step == 1234);
  CHECK(got.epoch == 5);
  CHECK(got.step_in_epoch == 78);
  CHECK(got.seed == 0xDEADBEEFCAFEF00Dull);
  CHECK(got.config_json == f.state.config_json);
  CHECK(same_bits(got.params, f.state.params));

  REQUIRE(got.optimizer.has_value());
  const OptimizerSnapshot want = f.opt->snapshot();
  CHECK(got.optimizer->iterations == 3);
  CHECK(got.optimizer->config.kind == "adam");
  CHECK(got.optimizer->config.learning_rate == want.config.learning_rate);
  CHECK(got.optimizer->config.beta2 == want.config.beta2);
  CHECK(got.optimizer->config.epsilon == want.config.epsilon);
  REQUIRE(got.optimizer->slots.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(got.optimizer->slots[i].name == want.slots[i].name);
    CHECK(same_bits(got.optimizer->slots[i].values, want.slots[i].values));
  }

  // Resuming from the file takes exactly the step the live optimizer takes.
  auto resumed = make_optimizer(got.optimizer->config, f.net.num_params);
  resumed->restore(*got.optimizer);
  std::vector<float> live = f.state.params, back = got.params;
  const std::vector<float> g = random_floats(f.net.num_params, 999);
  f.opt->step(live.data(), g.data());
  resumed->step(back.data(), g.data());
  CHECK(same_bits(live, back));

  // The file holds the tensors a Python reader expects: params in network order, PyTorch
  // shapes, slots named "<param>/m" and "<param>/v".
  threadsplit::Checkpoint raw;
  REQUIRE(raw.ParseFromString(read_bytes(path)));
  REQUIRE(raw.params_size() == int(f.net.params.size()));
  for (size_t i = 0; i < f.net.params.size(); ++i) {
    const ParamSpec& p = f.net.params[i];
    CHECK(raw.params(int(i)).name() == p.name);
    CHECK(std::vector<int64_t>(raw.params(int(i)).shape().begin(),
                               raw.params(int(i)).shape().end()) == p.shape);
  }
  CHECK(raw.optimizer().slots(0).name() == f.net.params[0].name + "/m");
  CHECK(raw.optimizer().slots(1).name() == f.net.params[0].name + "/v");
}

TEST_CASE("Checkpoints keep SGD momentum state, or no optimizer state at all", "[checkpoint]") {
  OptimizerConfig cfg;
  cfg.kind = "sgd";
  cfg.momentum = 0.9;
  Fixture f("seed_cnn", cfg);
  const std::string path = tmp_path("sgd.ckpt");
  save_checkpoint(path, f.net, f.state, f.opt.get());
  TrainingState got = load_checkpoint(path, f.net);
  REQUIRE(got.optimizer.has_value());
  REQUIRE(got.optimizer->slots.size() == 1);
  CHECK(got.optimizer->slots[0].name == "velocity");
  CHECK(got.optimizer->config.momentum == 0.9);
  CHECK(same_bits(got.optimizer->slots[0].values, f.opt->snapshot().slots[0].values));

  // Saving a loaded state again (no live optimizer) keeps the optimizer state.
  const std::string again = tmp_path("sgd_again.ckpt");
  save_checkpoint(again, f.net, got);
  CHECK(read_bytes(again) == read_bytes(path));

  got.optimizer.reset();
  save_checkpoint(path, f.net, got);
  CHECK_FALSE(load_checkpoint(path, f.net).optimizer.has_value());
}

TEST_CASE("A checkpoint with one byte flipped is refused as damaged", "[checkpoint]") {
  Fixture f("seed_cnn");
  const std::string path = tmp_path("damaged.ckpt");
  save_checkpoint(path, f.net, f.state, f.opt.get());
  std::string bytes = read_bytes(path);
  bytes[bytes.size() / 2] ^= 0x01;  // lands in tensor data: still parses, only the CRC knows
  write_bytes(path, bytes);
  CHECK_THROWS_AS(load_checkpoint(path, f.net), CheckpointError);
  CHECK_THROWS_WITH(load_checkpoint(path, f.net), Contains(path) && Contains("damaged"));
}

TEST_CASE("A truncated checkpoint is refused", "[checkpoint]") {
  Fixture f("seed_cnn");
  const std::string path = tmp_path("truncated.ckpt");
  save_checkpoint(path, f.net, f.state, f.opt.get());
  const std::string bytes = read_bytes(path);
  for (size_t keep : {bytes.size() - 1, bytes.size() - 7, bytes.size() / 2, size_t(10), size_t(0)}) {
    INFO("kept " << keep << " of " << bytes.size() << " bytes");
    write_bytes(path, bytes.substr(0, keep));
    CHECK_THROWS_AS(load_checkpoint(path, f.net), CheckpointError);
    CHECK_THROWS_WITH(load_checkpoint(path, f.net), Contains(path));
  }
}

TEST_CASE("Missing files, other files and other models are refused by name", "[checkpoint]") {
  const NetworkSpec seed = build_network("seed_cnn");
  const std::string missing = tmp_path("does_not_exist.ckpt");
  fs::remove(missing);
  CHECK_THROWS_WITH(load_checkpoint(missing, seed), Contains(missing) && Contains("no such file"));

  const std::string text = tmp_path("not_a_checkpoint.ckpt");
  write_bytes(text, "this is a text file, not a checkpoint\n");
  CHECK_THROWS_WITH(load_checkpoint(text, seed), Contains(text) && Contains("not a threadsplit"));

  Fixture f("seed_cnn");
  const std::string path = tmp_path("wrong_model.ckpt");
  save_checkpoint(path, f.net, f.state, f.opt.get());
  CHECK_THROWS_WITH(load_checkpoint(path, build_network("tf_tutorial_cnn")),
                    Contains(path) && Contains("'seed_cnn'") && Contains("'tf_tutorial_cnn'"));
}

TEST_CASE("Checkpoints whose tensors do not fit the network are refused", "[checkpoint]") {
  Fixture f("seed_cnn");
  const std::string path = tmp_path("edited.ckpt");
  using Ckpt = threadsplit::Checkpoint;
  struct Case {
    const char* what;
    std::function<void(Ckpt&)> edit;
    const char* message;
  };
  const Case cases[] = {
      {"missing param", [](Ckpt& c) { c.mutable_params()->RemoveLast(); },
       "parameter tensor 'fc.bias' is missing"},
      {"shape", [](Ckpt& c) { c.mutable_params(0)->set_shape(0, 16); },
       "'conv1.weight' has shape [16, 3, 3, 3], expected [32, 3, 3, 3]"},
      {"bytes", [](Ckpt& c) { c.mutable_params(1)->mutable_data()->resize(4 * 31); },
       "'conv1.bias' holds 124 bytes, expected 128"},
      {"extra", [](Ckpt& c) { c.add_params()->CopyFrom(c.params(0)); c.mutable_params(c.params_size() - 1)->set_name("conv9.weight"); },
       "unexpected parameter tensor 'conv9.weight'"},
      {"duplicate", [](Ckpt& c) { c.add_params()->CopyFrom(c.params(0)); },
       "'conv1.weight' appears twice"},
      {"missing slot", [](Ckpt& c) { c.mutable_optimizer()->mutable_slots()->RemoveLast(); },
       "optimizer slot tensor 'fc.bias/v' is missing"},
      {"slot shape", [](Ckpt& c) { c.mutable_optimizer()->mutable_slots(0)->clear_shape(); },
       "'conv1.weight/m' has shape []"},
      {"bad optimizer", [](Ckpt& c) { c.mutable_optimizer()->set_learning_rate(-1); },
       "--lr must be positive"},
      {"version", [](Ckpt& c) { c.set_format_version(2); }, "unsupported format_version 2"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    save_checkpoint(path, f.net, f.state, f.opt.get());
    REQUIRE_NOTHROW(load_checkpoint(path, f.net));
    edit_checkpoint(path, c.edit);
    CHECK_THROWS_AS(load_checkpoint(path, f.net), CheckpointError);
    CHECK_THROWS_WITH(load_checkpoint(path, f.net), Contains(path) && Contains(c.message));
  }
}

TEST_CASE("Saving is atomic: no temporary left, a failed save keeps the old file", "[checkpoint]") {
  Fixture f("seed_cnn");
  const fs::path dir = fs::path(tmp_path("atomic")) ;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string good = (dir / "good.ckpt").string();
  save_checkpoint(good, f.net, f.state, f.opt.get());
  save_checkpoint(good, f.net, f.state, f.opt.get());  // over an existing file
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"good.ckpt"});
  const std::string before = read_bytes(good);

  // A directory that does not exist: a clear error naming the path, nothing else touched.
  const std::string nowhere = (dir / "no_such_dir" / "x.ckpt").string();
  CHECK_THROWS_AS(save_checkpoint(nowhere, f.net, f.state, f.opt.get()), CheckpointError);
  CHECK_THROWS_WITH(save_checkpoint(nowhere, f.net, f.state, f.opt.get()),
                    Contains(nowhere) && Contains("No such file or directory"));

  // A save over `good` whose temporary's name is taken (a directory squats on it, as a
  // leftover of a killed process with this pid would) writes beside it under another name:
  // the squatter is left alone and later saves are never blocked by it.
  const fs::path squat = dir / ("good.ckpt.tmp." + std::to_string(::getpid()));
  fs::create_directory(squat);
  TrainingState changed = f.state;
  changed.step = 99999;
  CHECK_NOTHROW(save_checkpoint(good, f.net, changed, f.opt.get()));
  CHECK(load_checkpoint(good, f.net).step == 99999);
  CHECK(fs::is_directory(squat));
  fs::remove(squat);
  save_checkpoint(good, f.net, f.state, f.opt.get());
  CHECK(read_bytes(good) == before);

  // A save whose rename fails (the path is a directory) removes its temporary file.
  const fs::path taken = dir / "taken.ckpt";
  fs::create_directories(taken / "inside");
  CHECK_THROWS_WITH(save_checkpoint(taken.string(), f.net, f.state, f.opt.get()),
                    Contains(taken.string()) && Contains("rename"));
  fs::remove_all(taken);
  CHECK(load_checkpoint(good, f.net).step == 1234);
  names.clear();
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"good.ckpt"});
}

TEST_CASE("save_checkpoint refuses a state that does not belong to the network", "[checkpoint]") {
  Fixture f("seed_cnn");
  const std::string path = tmp_path("refused.ckpt");
  TrainingState short_params = f.state;
  short_params.params.pop_back();
  CHECK_THROWS_AS(save_checkpoint(path, f.net, short_params), std::invalid_argument);
  TrainingState other = f.state;
  other.model = "tf_tutorial_cnn";
  CHECK_THROWS_AS(save_checkpoint(path, f.net, other), std::invalid_argument);
}
