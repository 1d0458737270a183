// The run report as written (what scripts/compare_pytorch.py, the sweep and the tests read):
// its keys in their order, integers as integers, strings escaped, non-finite figures as null.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "atomic_file.h"
#include "json_io.h"
#include "run_report.h"

TEST_CASE("the run report keeps its key order, escapes strings, keeps integers integers and "
          "writes non-finite figures as null",
          "[json][report]") {
  ts::RunSetup s;
  s.run_id = "run \"1\"";
  s.world_size = 2;
  ts::ReportInputs in;
  in.setup = &s;
  in.status = "failed";
  in.error = "worker 1: \"bad\"\n\tmessage \x01";
  ts::EvalOutcome test;
  test.split = "test";
  test.samples = 10;
  test.loss = std::nan("");
  test.accuracy = std::numeric_limits<double>::infinity();
  in.test = test;
  in.refusals = {"a refusal"};
  const std::string dir = std::string(TEST_TMP_DIR);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/run_report_test.json";
  ts::write_run_report(path, in);

  const std::string text = ts::read_whole_file(path);
  CHECK(text.back() == '\n');
  CHECK_THAT(text, Catch::Contains(R"("error": "worker 1: \"bad\"\n\tmessage \u0001")"));
  const nlohmann::ordered_json in_order = nlohmann::ordered_json::parse(text);
  std::vector<std::string> keys;
  for (const auto& item : in_order.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"run_id", "status", "lineage", "error", "config", "split", "topology", "data",
                                         "machine", "versions", "coordinator", "workers", "epochs",
                                         "test", "totals", "refused_workers", "lost_workers"});

  const ts::JsonNode r = ts::read_json_file(path);
  CHECK(r["run_id"].str() == "run \"1\"");
  CHECK(r["error"].str() == in.error);
  CHECK(r["test"]["loss"].is_null());
  CHECK(r["test"]["accuracy"].is_null());
  CHECK(r["test"]["samples"].json().is_number_integer());
  CHECK(r["config"]["procs"].json().is_number_integer());
  CHECK(r["config"]["procs"].num() == 2);
  CHECK(r["config"]["lr"].json().is_number_float());
  CHECK(r["split"]["oversubscribed"].json().is_boolean());
  CHECK(r["totals"]["steps"].json().is_number_integer());
  CHECK(r["workers"].json().is_array());
  CHECK(r["workers"].size() == 0);
  CHECK(r["epochs"].json().is_array());
  CHECK(r["lost_workers"].json().is_array());
  REQUIRE(r["refused_workers"].size() == 1);
  CHECK(r["refused_workers"][0].str() == "a refusal");
  // The configuration alone, as checkpoints store it: the same object as the report's.
  CHECK(ts::parse_json(ts::config_json(s), "config_json").json() == r["config"].json());
}
