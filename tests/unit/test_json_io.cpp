// What we own around nlohmann::json: checked reading that names the document and the key.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "json_io.h"

TEST_CASE("reading JSON names the document and the key when one is missing or of the wrong type",
          "[json]") {
  const ts::JsonNode doc = ts::parse_json(R"({"a": {"b": [1, "two", null, true]}, "n": 3})", "r.json");
  CHECK(doc["a"]["b"][0].num() == 1);
  CHECK(doc["a"]["b"][1].str() == "two");
  CHECK(std::isnan(doc["a"]["b"][2].num()));  // null: how the writers put a non-finite number
  CHECK(doc["a"]["b"][3].boolean());
  CHECK(doc["a"]["b"].size() == 4);
  CHECK(doc["a"]["b"].items().size() == 4);
  CHECK(doc.has("n"));
  CHECK_FALSE(doc.has("m"));
  CHECK_FALSE(doc["n"].has("m"));
  CHECK(doc["a"]["b"][1].path() == "a.b[1]");
  CHECK(doc["a"].document() == "r.json");

  CHECK_THROWS_WITH(doc["a"]["c"], "r.json: no key 'a.c'");
  CHECK_THROWS_WITH(doc["a"]["b"][1].num(), "r.json: 'a.b[1]' is a string, not a number");
  CHECK_THROWS_WITH(doc["a"]["b"][0].str(), "r.json: 'a.b[0]' is a number, not a string");
  CHECK_THROWS_WITH(doc["a"]["b"][2].boolean(), "r.json: 'a.b[2]' is null, not true or false");
  CHECK_THROWS_WITH(doc["a"]["b"][4], "r.json: 'a.b' has 4 elements, no [4]");
  CHECK_THROWS_WITH(doc["n"]["x"], "r.json: 'n' is a number, not an object");
  CHECK_THROWS_WITH(doc["n"].size(), "r.json: 'n' is a number, not an array or an object");
  CHECK_THROWS_WITH(doc[0], "r.json: the top level is an object, not an array");
  CHECK_THROWS_WITH(doc["a"].items(), "r.json: 'a' is an object, not an array");
}

TEST_CASE("a JSON value read out of a document outlives the document's other handles", "[json]") {
  const ts::JsonNode inner = ts::parse_json(R"({"a": {"b": ["x"]}})", "t.json")["a"]["b"];
  CHECK(inner[0].str() == "x");
  CHECK_THROWS_WITH(inner[0]["c"], "t.json: 'a.b[0]' is a string, not an object");
}

TEST_CASE("text that is not JSON, or a file that cannot be read, is refused in one sentence", "[json]") {
  CHECK_THROWS_WITH(ts::parse_json("{not json", "t.json"),
                    Catch::StartsWith("t.json is not JSON: parse error at line 1, column 3: "));
  CHECK_THROWS_WITH(ts::parse_json(""), Catch::StartsWith("the JSON text is not JSON: "));
  const std::string missing = std::string(TEST_TMP_DIR) + "/no_such_report.json";
  CHECK_THROWS_WITH(ts::read_json_file(missing), Catch::StartsWith("cannot read " + missing + ": "));
}
