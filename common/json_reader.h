// Just enough JSON to read run reports back (the sweep and --autotune read their trials'
// reports): objects, arrays, strings (simple escapes), numbers, true/false/null.
// Throws std::runtime_error on anything else.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ts {

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> items;
  std::map<std::string, Json> fields;

  const Json& operator[](const std::string& key) const;  // throws when absent
  const Json& operator[](size_t i) const { return items.at(i); }
  size_t size() const { return kind == kArray ? items.size() : fields.size(); }
  bool has(const std::string& key) const { return fields.count(key) != 0; }
};

Json parse_json(const std::string& text);
Json read_json_file(const std::string& path);

}  // namespace ts
