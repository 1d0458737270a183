// What we own around nlohmann::json: checked reading that names the document and the key,
// and the writers' choices (escaping, non-finite numbers as null, integral counts as integers).
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "json_io.h"
#include "trace_writer.h"

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

TEST_CASE("written JSON keeps keys in the order set, nests by two spaces, escapes, and writes "
          "non-finite numbers as null",
          "[json]") {
  nlohmann::ordered_json j;
  j["name"] = "a\"b\\c\n";
  j["n"] = 3;
  j["x"] = 0.5;
  j["nan"] = std::nan("");
  j["ok"] = true;
  j["list"] = nlohmann::ordered_json::array({1, "two", nlohmann::ordered_json::object()});
  j["empty"] = nlohmann::ordered_json::array();
  const std::string expect =
      "{\n  \"name\": \"a\\\"b\\\\c\\n\",\n  \"n\": 3,\n  \"x\": 0.5,\n  \"nan\": null,\n"
      "  \"ok\": true,\n  \"list\": [\n    1,\n    \"two\",\n    {}\n  ],\n  \"empty\": []\n}";
  CHECK(ts::json_text(j) == expect);
  CHECK(ts::json_text(std::string("\x01", 1)) == "\"\\u0001\"");
  CHECK(ts::json_text(-std::numeric_limits<double>::infinity()) == "null");
}

TEST_CASE("the trace escapes names, writes counts as integers and non-finite numbers as null",
          "[json]") {
  const double inf = std::numeric_limits<double>::infinity();
  ts::TraceWriter t;
  t.name_process(1, "a \"b\"\\c\n\x01");
  t.name_thread(1, 0, "not UTF-8: \xff");  // a hostname or an error text could be anything
  t.span(1, 0, "x", "cat", std::nan(""), 2, {{"step", 3}, {"ratio", 0.5}, {"inf", inf}});
  const std::string text = t.json({{"note", "tab\there"}});
  CHECK_THAT(text, Catch::Contains(R"("name": "a \"b\"\\c\n\u0001")"));
  CHECK_THAT(text, Catch::Contains(R"("ts": null,)"));
  CHECK_THAT(text, Catch::Contains(R"("step": 3,)"));
  CHECK_THAT(text, Catch::Contains(R"("ratio": 0.5,)"));
  CHECK_THAT(text, Catch::Contains(R"("inf": null)"));
  CHECK_THAT(text, Catch::Contains(R"("note": "tab\there")"));
  CHECK_THAT(text, Catch::Contains("\"not UTF-8: \xef\xbf\xbd\""));  // U+FFFD
  const ts::JsonNode doc = ts::parse_json(text, "the trace");
  CHECK(doc["traceEvents"][0]["args"]["name"].str() == "a \"b\"\\c\n\x01");
  CHECK(doc["traceEvents"][3]["args"]["step"].json().is_number_integer());
  CHECK(doc["otherData"]["note"].str() == "tab\there");
}
