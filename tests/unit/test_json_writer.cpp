#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "json_writer.h"

TEST_CASE("the JSON writer nests, separates and escapes", "[json]") {
  ts::JsonWriter w;
  w.begin_object()
      .field("name", "a\"b\\c\n")
      .field("n", 3)
      .field("x", 0.5)
      .field("nan", std::nan(""))
      .field("ok", true);
  w.key("list").begin_array().value(1).value("two").begin_object().end_object().end_array();
  w.key("empty").begin_array().end_array();
  w.end_object();
  const std::string expect =
      "{\n  \"name\": \"a\\\"b\\\\c\\n\",\n  \"n\": 3,\n  \"x\": 0.5,\n  \"nan\": null,\n"
      "  \"ok\": true,\n  \"list\": [\n    1,\n    \"two\",\n    {}\n  ],\n  \"empty\": []\n}";
  CHECK(w.str() == expect);
  CHECK(ts::JsonWriter::escape(std::string("\x01", 1)) == "\"\\u0001\"");
}
