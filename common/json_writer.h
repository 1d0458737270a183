// A small streaming JSON writer for the run report and checkpoint config: keys and values in
// the order written, two-space indentation, strings escaped, non-finite numbers as null
// (JSON has no NaN).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ts {

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  // Inside an object: the key of the next value (or object / array).
  JsonWriter& key(const std::string& k);

  JsonWriter& value(const std::string& s);
  JsonWriter& value(const char* s) { return value(std::string(s)); }
  JsonWriter& value(double d);
  JsonWriter& value(int64_t i);
  JsonWriter& value(int i) { return value(int64_t(i)); }
  JsonWriter& value(uint64_t u);
  JsonWriter& value(bool b);
  JsonWriter& null();

  // key + value in one call.
  template <class T>
  JsonWriter& field(const std::string& k, const T& v) {
    key(k);
    return value(v);
  }

  // The document so far; complete once every object and array is closed.
  const std::string& str() const { return out_; }

  static std::string escape(const std::string& s);  // with the quotes

 private:
  void before_value();
  void newline();
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

}  // namespace ts
