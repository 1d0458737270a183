// What --resume compares: every setting that changes the math, and the saved position.
#include <catch2/catch.hpp>

#include <string>

#include "resume_checks.h"

using namespace ts;
using Catch::Contains;

namespace {

const std::string kSaved =
    R"({"model":"seed_cnn","procs":2,"threads":1,"global_batch":128,"train_records":45000,)"
    R"("shuffle":true,"augment":"none","seed":7,"optimizer":"adam","lr":0.001,"momentum":0.9,)"
    R"("beta1":0.9,"beta2":0.999,"epsilon":1e-07,"steps":200,"epochs":3})";

std::string with(const std::string& key, const std::string& value) {
  std::string s = kSaved;
  const std::string k = "\"" + key + "\":";
  const size_t at = s.find(k) + k.size();
  const size_t end = s.find_first_of(",}", at);
  return s.replace(at, end - at, value);
}

}  // namespace

TEST_CASE("the same math under another split, step count or epoch count is no change", "[resume]") {
  std::string given = with("procs", "1");
  given = given.replace(given.find("\"steps\":200"), 11, "\"steps\":400");
  const auto c = math_changes(kSaved, given);
  REQUIRE(c);
  CHECK(c->empty());
}

TEST_CASE("each setting that changes the math is named with both values", "[resume]") {
  const struct {
    const char* key;
    const char* value;
    const char* flag;
  } cases[] = {{"global_batch", "256", "--batch"},    {"shuffle", "false", "--no-shuffle"},
               {"augment", "\"flip\"", "--augment"}, {"lr", "0.01", "--lr"},
               {"optimizer", "\"sgd\"", "--optimizer"}, {"seed", "8", "--seed"},
               {"momentum", "0.5", "--momentum"},    {"model", "\"tf_tutorial_cnn\"", "--model"},
               {"train_records", "50000", "training records"}};
  for (const auto& k : cases) {
    INFO(k.key);
    const auto c = math_changes(kSaved, with(k.key, k.value));
    REQUIRE(c);
    REQUIRE(c->size() == 1);
    CHECK((*c)[0].field == k.key);
    CHECK_THAT(describe_changes(*c), Contains(k.flag));
  }
  const auto two = math_changes(kSaved, with("lr", "0.01").replace(with("lr", "0.01").find("\"global_batch\":128"), 18, "\"global_batch\":256"));
  REQUIRE(two);
  CHECK(describe_changes(*two) == "--batch (or --batch-per-worker x workers): 128 saved, 256 given; "
                                  "--lr: 0.001 saved, 0.01 given");
}

TEST_CASE("a saved configuration that cannot be read is reported as unknown, not as equal",
          "[resume]") {
  CHECK_FALSE(math_changes("", kSaved));
  CHECK_FALSE(math_changes("not json", kSaved));
  CHECK_FALSE(math_changes("[1,2]", kSaved));
  const auto missing = math_changes(R"({"model":"seed_cnn"})", kSaved);
  REQUIRE(missing);  // an object without the fields: every one of them differs
  CHECK_THAT(describe_changes(*missing), Contains("(absent) saved, 128 given"));
}

TEST_CASE("a position beyond the epoch plan is refused, one inside it is not", "[resume]") {
  CHECK(position_problem(0, 351, 128).empty());
  CHECK(position_problem(350, 351, 128).empty());
  CHECK_THAT(position_problem(200, 175, 256), Contains("200 steps into an epoch") &&
                                                  Contains("epoch of 175 steps at global batch 256"));
  CHECK_FALSE(position_problem(175, 175, 256).empty());
}

TEST_CASE("a setting newer than the saved configuration counts as its default", "[resume]") {
  // A checkpoint written before --label-smoothing existed ran without it: resuming with the
  // default is no change, with another value is one.
  auto c = math_changes(kSaved, with("epochs", R"(3,"label_smoothing":0.0,"nesterov":false)"));
  REQUIRE(c);
  CHECK(c->empty());
  c = math_changes(kSaved, with("epochs", R"(3,"label_smoothing":0.2)"));
  REQUIRE(c);
  REQUIRE(c->size() == 1);
  CHECK_THAT(describe_changes(*c), Contains("--label-smoothing: 0.0 saved, 0.2 given"));
  c = math_changes(with("epochs", R"(3,"lr_schedule":"triangular","schedule_steps":476)"),
                   with("epochs", R"(3,"lr_schedule":"triangular","schedule_steps":480)"));
  REQUIRE(c);
  REQUIRE(c->size() == 1);
  CHECK((*c)[0].field == "schedule_steps");
}
