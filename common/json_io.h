// JSON in and out, over nlohmann::json (Debian's nlohmann-json3-dev).
// Writing: build an nlohmann::ordered_json (keys stay in the order they were set) and turn it
// into text with json_text(). Reading: parse_json() and read_json_file() give a JsonNode, a
// value that knows its document's name and its own place in it, so a missing key or a value of
// the wrong type is a std::runtime_error naming both ("trials/p0_r1.json: no key
// 'timed.shares.update'") instead of a bare nlohmann exception.
#pragma once
#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ts {

// Two-space indentation, one element per line, keys in insertion order, no trailing newline.
// Non-finite numbers come out as null (JSON has no NaN or infinity); bytes that are not UTF-8
// as U+FFFD (nlohmann would throw on them).
std::string json_text(const nlohmann::ordered_json& doc);

class JsonNode {
 public:
  // The value under `key` of an object. Throws when this is not an object or has no such key.
  JsonNode operator[](const std::string& key) const;
  // Element i of an array. Throws when this is not an array or i is out of range.
  JsonNode operator[](size_t i) const;
  bool has(const std::string& key) const;   // an object with this key
  size_t size() const;                      // an array's elements, an object's keys (else throws)
  std::vector<JsonNode> items() const;      // an array's elements; throws otherwise

  // The value as a C++ one; each throws, naming the file and the key, when it is of another
  // type. num() takes any number and reads null (how non-finite numbers are written) as NaN.
  double num() const;
  const std::string& str() const;
  bool boolean() const;
  bool is_null() const { return node_->is_null(); }

  const nlohmann::json& json() const { return *node_; }
  const std::string& document() const { return *name_; }
  const std::string& path() const { return path_; }   // "" at the top, "workers[1].cores"

 private:
  friend JsonNode parse_json(const std::string& text, const std::string& name);
  JsonNode(std::shared_ptr<const nlohmann::json> doc, const nlohmann::json* node,
           std::shared_ptr<const std::string> name, std::string path);
  [[noreturn]] void wrong_type(const char* wanted) const;
  std::string where() const;   // "'workers[1].cores'" or "the top level"

  std::shared_ptr<const nlohmann::json> doc_;   // keeps node_ alive
  const nlohmann::json* node_;
  std::shared_ptr<const std::string> name_;
  std::string path_;
};

// Throws std::runtime_error "NAME is not JSON: ..." with nlohmann's line and column.
JsonNode parse_json(const std::string& text, const std::string& name = "the JSON text");
// The same for a file, named by its path; "cannot read PATH: ..." when it cannot be read.
JsonNode read_json_file(const std::string& path);

}  // namespace ts
