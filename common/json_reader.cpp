#include "json_reader.h"

#include <cstdlib>
#include <stdexcept>

#include "atomic_file.h"

namespace ts {

namespace {

struct Parser {
  const std::string& s;
  size_t i = 0;

  [[noreturn]] void fail(const std::string& why) {
    throw std::runtime_error("JSON: " + why + " at offset " + std::to_string(i));
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  }
  bool literal(const char* w) {
    const std::string word(w);
    if (s.compare(i, word.size(), word) == 0) {
      i += word.size();
      return true;
    }
    return false;
  }
  std::string string() {
    if (s[i] != '"') fail("expected a string");
    ++i;
    std::string out;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        ++i;
        const char c = s.at(i);
        if (c == 'n') out += '\n';
        else if (c == 't') out += '\t';
        else if (c == 'r') out += '\r';
        else if (c == 'u') {
          out += char(std::strtol(s.substr(i + 1, 4).c_str(), nullptr, 16));
          i += 4;
        } else out += c;
        ++i;
      } else {
        out += s[i++];
      }
    }
    if (i >= s.size()) fail("unterminated string");
    ++i;
    return out;
  }
  Json value() {
    ws();
    if (i >= s.size()) fail("unexpected end");
    Json v;
    const char c = s[i];
    if (c == '{') {
      v.kind = Json::kObject;
      ++i;
      ws();
      if (s[i] == '}') {
        ++i;
        return v;
      }
      while (true) {
        ws();
        std::string k = string();
        ws();
        if (s[i++] != ':') fail("expected ':'");
        v.fields[k] = value();
        ws();
        if (s[i] == ',') {
          ++i;
          continue;
        }
        if (s[i++] != '}') fail("expected '}'");
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::kArray;
      ++i;
      ws();
      if (s[i] == ']') {
        ++i;
        return v;
      }
      while (true) {
        v.items.push_back(value());
        ws();
        if (s[i] == ',') {
          ++i;
          continue;
        }
        if (s[i++] != ']') fail("expected ']'");
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::kString;
      v.str = string();
      return v;
    }
    if (literal("true")) {
      v.kind = Json::kBool;
      v.b = true;
      return v;
    }
    if (literal("false")) {
      v.kind = Json::kBool;
      return v;
    }
    if (literal("null")) return v;
    char* end = nullptr;
    v.num = std::strtod(s.c_str() + i, &end);
    if (end == s.c_str() + i) fail("unexpected character");
    i = size_t(end - s.c_str());
    v.kind = Json::kNumber;
    return v;
  }
};

}  // namespace

const Json& Json::operator[](const std::string& key) const {
  auto it = fields.find(key);
  if (it == fields.end()) throw std::runtime_error("JSON: no key '" + key + "'");
  return it->second;
}

Json parse_json(const std::string& text) {
  Parser p{text};
  Json v = p.value();
  return v;
}

Json read_json_file(const std::string& path) {
  try {
    return parse_json(read_whole_file(path));
  } catch (const FileReadError& e) {
    throw std::runtime_error("cannot read " + path + ": " + e.what());
  }
}

}  // namespace ts
