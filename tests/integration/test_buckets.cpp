// --bucket-kb: the gradient goes up in buckets while backward runs and the coordinator sums
// them as they arrive, in rank order, so a run trains to the same bits as with whole
// gradients (optimizer state and batch-norm running statistics included).
#include <catch2/catch.hpp>

#include "checkpoint.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"

using ts::JsonNode;

namespace {

ts::TrainingState train(const std::string& model, const std::vector<std::string>& split,
                        const std::string& bucket_kb, int steps, const std::string& tag,
                        const std::string& plane = "auto") {
  const std::string dir = ts_test::tmp_dir();
  const std::string ckpt = dir + "/" + tag + ".ckpt", report = dir + "/" + tag + ".json";
  std::vector<std::string> args = {"--model", model, "--bucket-kb", bucket_kb, "--data-plane", plane,
                                   "--steps", std::to_string(steps),
                                   "--seed", "11", "--eval-every", "0", "--save", ckpt, "--report", report};
  if (model == "airbench94") args.insert(args.end(), {"--batch", "256"});
  ts_test::Process p = ts_test::start(tag, ts_test::coordinator_args(ts_test::with(split, args)));
  const int rc = ts_test::wait_exit(p, 600);
  INFO(tag << " stdout:\n" << p.out() << "\nstderr:\n" << p.err());
  REQUIRE(rc == 0);
  const JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "completed");
  CHECK(r["config"]["bucket_kb"].num() == std::stod(bucket_kb));
  // auto: shared memory for spawned workers, unless buckets ask for messages.
  CHECK(r["config"]["data_plane"].str() == (plane != "auto" ? plane : bucket_kb == "0" ? "shm" : "grpc"));
  return ts::load_checkpoint(ckpt, ts::build_network(model));
}

void check_bit_equal(const ts::TrainingState& a, const ts::TrainingState& b) {
  REQUIRE(a.params.size() == b.params.size());
  CHECK(a.params == b.params);
  REQUIRE(a.optimizer);
  REQUIRE(b.optimizer);
  REQUIRE(a.optimizer->slots.size() == b.optimizer->slots.size());
  for (size_t i = 0; i < a.optimizer->slots.size(); ++i) {
    INFO("slot " << a.optimizer->slots[i].name);
    CHECK(a.optimizer->slots[i].values == b.optimizer->slots[i].values);
  }
}

}  // namespace

TEST_CASE("buckets sent during backward train to the same bits as whole gradients, at 2x1x1 and 1x2x1",
          "[integration][training][buckets]") {
  const std::vector<std::string> p2 = {"--procs", "2", "--threads", "1"};
  // 8 KiB: seed_cnn's 80 KB gradient in several buckets.
  check_bit_equal(train("seed_cnn", p2, "0", 20, "buckets_off_2x1"), train("seed_cnn", p2, "8", 20, "buckets_on_2x1"));
  const std::vector<std::string> i2 = {"--procs", "1", "--inter-op", "2", "--threads", "1"};
  check_bit_equal(train("seed_cnn", i2, "0", 20, "buckets_off_1x2x1"), train("seed_cnn", i2, "8", 20, "buckets_on_1x2x1"));
}

TEST_CASE("airbench94 with buckets: the same bits, running statistics included", "[integration][training][buckets]") {
  const std::vector<std::string> p2 = {"--procs", "2", "--threads", "1"};
  check_bit_equal(train("airbench94", p2, "0", 2, "buckets_off_airbench"),
                  train("airbench94", p2, "256", 2, "buckets_on_airbench"));
}

TEST_CASE("the shared-memory data plane trains to the same bits as gRPC messages, with inter-op teams too",
          "[integration][training][data_plane]") {
  const std::vector<std::string> p2 = {"--procs", "2", "--threads", "1"};
  check_bit_equal(train("seed_cnn", p2, "0", 20, "plane_grpc_2x1", "grpc"), train("seed_cnn", p2, "0", 20, "plane_shm_2x1", "shm"));
  const std::vector<std::string> i2 = {"--procs", "1", "--inter-op", "2", "--threads", "1"};
  check_bit_equal(train("seed_cnn", i2, "0", 20, "plane_grpc_1x2x1", "grpc"), train("seed_cnn", i2, "0", 20, "plane_shm_1x2x1", "shm"));
  check_bit_equal(train("airbench94", p2, "0", 2, "plane_grpc_airbench", "grpc"),
                  train("airbench94", p2, "0", 2, "plane_shm_airbench", "shm"));
}
