#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "json_writer.h"
#include "wire_format.h"

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

TEST_CASE("float buffers survive the wire and bad ones are named", "[wire]") {
  const float v[3] = {1.5f, -2.f, 3e-8f};
  const std::string bytes = ts::pack_floats(v, 3);
  REQUIRE(bytes.size() == 12);
  float back[3] = {};
  CHECK(ts::unpack_floats(bytes, 3, back, "gradient").empty());
  CHECK(back[0] == 1.5f);
  CHECK(back[2] == 3e-8f);
  CHECK_THAT(ts::unpack_floats(bytes, 4, back, "gradient"),
             Catch::Contains("gradient has 12 bytes, expected 16"));
  const float bad[2] = {0.f, std::numeric_limits<float>::infinity()};
  CHECK_THAT(ts::unpack_floats(ts::pack_floats(bad, 2), 2, back, "parameters"),
             Catch::Contains("non-finite value") && Catch::Contains("position 1"));
  CHECK(ts::same_secret("abc", "abc"));
  CHECK_FALSE(ts::same_secret("abc", "abd"));
  CHECK_FALSE(ts::same_secret("abc", "abcd"));
}
