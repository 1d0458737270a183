// --model-file and --export-onnx in real runs (issue 14): an exported seed_cnn trains to the
// built-in's bits from the same weights, the exported model passes onnx.checker and holds the
// trained weights, the sweep measures a model file, and bad files are refused by name.
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "checkpoint.h"
#include "json_io.h"
#include "model_source.h"
#include "network.h"
#include "onnx_model.h"
#include "run_helpers.h"
#include "skip.h"

namespace fs = std::filesystem;

namespace {

std::string write_initial_model(const std::string& path, uint64_t seed) {
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  std::vector<float> p(net.num_params);
  ts::init_params(net, seed, p.data());
  ts::export_onnx(net, p.data(), path);
  return path;
}

struct Run {
  int rc = -1;
  std::string out, err;
};

Run run(const std::string& tag, const std::vector<std::string>& args) {
  ts_test::Process p = ts_test::start(tag, ts_test::coordinator_args(args));
  Run r;
  r.rc = ts_test::wait_exit(p, 600);
  r.out = p.out();
  r.err = p.err();
  return r;
}

bool python_onnx() { return system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("seed_cnn exported to ONNX trains to the built-in's bits from the same weights",
          "[integration][onnx]") {
  const std::string dir = ts_test::fresh_dir("onnx_bits");
  const std::string model = write_initial_model(dir + "/seed.onnx", 11);
  const std::vector<std::string> common = {"--procs", "2", "--threads", "1", "--steps", "20", "--seed", "11",
                                           "--eval-every", "0"};
  const Run a = run("onnx_bits_builtin", ts_test::with(common, {"--save", dir + "/a.ckpt"}));
  INFO(a.out << a.err);
  REQUIRE(a.rc == 0);
  const Run b = run("onnx_bits_file", ts_test::with(common, {"--model-file", model, "--init-from-model", "--save",
                                                             dir + "/b.ckpt", "--report", dir + "/b.json"}));
  INFO(b.out << b.err);
  REQUIRE(b.rc == 0);
  CHECK_THAT(b.out, Catch::Contains("seed.onnx: starting from the model file's initializers"));
  const ts::NetworkSpec net = ts::build_network("seed_cnn");
  const std::string bytes = ts::read_model_file(model);
  const ts::TrainingState sa = ts::load_checkpoint(dir + "/a.ckpt", net),
                          sb = ts::load_checkpoint(dir + "/b.ckpt", ts::network_for(ts::onnx_model_name(model, bytes), bytes));
  CHECK(sa.params == sb.params);
  REQUIRE(sa.optimizer);
  REQUIRE(sb.optimizer);
  for (size_t i = 0; i < sa.optimizer->slots.size(); ++i) CHECK(sa.optimizer->slots[i].values == sb.optimizer->slots[i].values);
  const ts::JsonNode r = ts::read_json_file(dir + "/b.json");
  CHECK(r["config"]["model"].str().rfind("onnx:seed.onnx@", 0) == 0);
  // Without --init-from-model the run initializes as PyTorch would, and says so.
  const Run c = run("onnx_bits_fresh", ts_test::with(common, {"--model-file", model, "--steps", "2"}));
  CHECK(c.rc == 0);
  CHECK_THAT(c.out, Catch::Contains("weights initialized as PyTorch initializes them"));
}

TEST_CASE("a run with --export-onnx writes the trained model, which onnx.checker accepts and which holds the trained weights",
          "[integration][onnx]") {
  const std::string dir = ts_test::fresh_dir("onnx_export");
  const Run r = run("onnx_export", {"--model", "tf_tutorial_cnn", "--steps", "3", "--eval-every", "0", "--save",
                                    dir + "/t.ckpt", "--export-onnx", dir + "/t.onnx"});
  INFO(r.out << r.err);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("wrote ONNX model " + dir + "/t.onnx (step 3, batch norm in eval form)"));
  const ts::NetworkSpec net = ts::build_network("tf_tutorial_cnn");
  const ts::ImportedModel back = ts::import_onnx(ts::read_model_file(dir + "/t.onnx"), "t.onnx");
  CHECK(back.params == ts::load_checkpoint(dir + "/t.ckpt", net).params);
  if (!python_onnx()) {
    ts_test::skip_test("python3-onnx is not installed, so onnx.checker cannot check the exported file");
    return;
  }
  const int rc = system(("/usr/bin/python3 -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' " +
                         dir + "/t.onnx").c_str());
  CHECK(rc == 0);
}

TEST_CASE("the sweep measures an ONNX model file like a built-in net", "[integration][onnx][sweep]") {
  const std::string dir = ts_test::fresh_dir("onnx_sweep");
  const std::string model = write_initial_model(dir + "/seed.onnx", 3);
  ts_test::Process p = ts_test::start(
      "onnx_sweep", {THREADSPLIT_BIN, "sweep", "--data", ts_test::test_data_dir(), "--out", dir + "/out", "--models",
                     model, "--batch-modes", "global", "--steps", "3", "--warmup-steps", "1", "--repeats", "2",
                     "--batch", "32", "--inter-op", "1", "--worker-bin", THREADSPLIT_WORKER_BIN});
  const int rc = ts_test::wait_exit(p, 600);
  INFO(p.out() << p.err());
  REQUIRE(rc == 0);
  const ts::JsonNode j = ts::read_json_file(dir + "/out/sweep.json");
  const std::string csv = ts_test::read_text(dir + "/out/sweep.csv");
  CHECK_THAT(csv, Catch::Contains(model));
  CHECK_THAT(p.out(), Catch::Contains("seed.onnx"));
}

TEST_CASE("bad model files and flags are refused before anything starts", "[integration][onnx]") {
  const std::string dir = ts_test::fresh_dir("onnx_refusals");
  const std::string good = write_initial_model(dir + "/seed.onnx", 1);
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(ts::read_model_file(good)));
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == "GlobalAveragePool") n.set_op_type("Softmax");
  {
    std::ofstream(dir + "/softmax.onnx", std::ios::binary) << m.SerializeAsString();
    std::ofstream(dir + "/text.onnx") << "not a model";
  }
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--model-file", dir + "/missing.onnx"}, "--model-file " + dir + "/missing.onnx: " + dir + "/missing.onnx cannot be read"},
      {{"--model-file", dir + "/text.onnx"}, "text.onnx is not an ONNX model"},
      {{"--model-file", dir + "/softmax.onnx"}, "node 'gap' (Softmax): the op Softmax is not supported"},
      {{"--model-file", good, "--model", "seed_cnn"}, "--model and --model-file both name the network: give one"},
      {{"--init-from-model"}, "--init-from-model starts from a model file's weights: it needs --model-file"},
      {{"--export-onnx", "/nonexistent/dir/m.onnx"}, "--export-onnx /nonexistent/dir/m.onnx: the directory /nonexistent/dir"},
  };
  for (const Case& c : cases) {
    const Run r = run("onnx_refusal", ts_test::with(c.args, {"--steps", "1", "--eval-every", "0"}));
    INFO(r.out << r.err);
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains(c.says));
  }
}
