#include "json_io.h"

#include <limits>
#include <stdexcept>
#include <utility>

#include "atomic_file.h"

namespace ts {

namespace {

// nlohmann's what() without its "[json.exception.parse_error.101] " tag.
std::string without_tag(const std::string& what) {
  const size_t end = what.find("] ");
  return what.rfind('[', 0) == 0 && end != std::string::npos ? what.substr(end + 2) : what;
}

}  // namespace

std::string json_text(const nlohmann::ordered_json& doc) {
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

JsonNode::JsonNode(std::shared_ptr<const nlohmann::json> doc, const nlohmann::json* node,
                   std::shared_ptr<const std::string> name, std::string path)
    : doc_(std::move(doc)), node_(node), name_(std::move(name)), path_(std::move(path)) {}

std::string JsonNode::where() const { return path_.empty() ? "the top level" : "'" + path_ + "'"; }

void JsonNode::wrong_type(const char* wanted) const {
  const std::string type = node_->type_name();
  const std::string is = node_->is_null()                          ? type
                         : node_->is_array() || node_->is_object() ? "an " + type
                                                                   : "a " + type;
  throw std::runtime_error(*name_ + ": " + where() + " is " + is + ", not " + wanted);
}

JsonNode JsonNode::operator[](const std::string& key) const {
  if (!node_->is_object()) wrong_type("an object");
  const std::string path = path_.empty() ? key : path_ + "." + key;
  auto it = node_->find(key);
  if (it == node_->end()) throw std::runtime_error(*name_ + ": no key '" + path + "'");
  return JsonNode(doc_, &*it, name_, path);
}

JsonNode JsonNode::operator[](size_t i) const {
  if (!node_->is_array()) wrong_type("an array");
  if (i >= node_->size())
    throw std::runtime_error(*name_ + ": " + where() + " has " + std::to_string(node_->size()) +
                             " elements, no [" + std::to_string(i) + "]");
  return JsonNode(doc_, &(*node_)[i], name_, path_ + "[" + std::to_string(i) + "]");
}

bool JsonNode::has(const std::string& key) const {
  return node_->is_object() && node_->find(key) != node_->end();
}

size_t JsonNode::size() const {
  if (!node_->is_array() && !node_->is_object()) wrong_type("an array or an object");
  return node_->size();
}

std::vector<JsonNode> JsonNode::items() const {
  if (!node_->is_array()) wrong_type("an array");
  std::vector<JsonNode> out;
  out.reserve(node_->size());
  for (size_t i = 0; i < node_->size(); ++i) out.push_back((*this)[i]);
  return out;
}

double JsonNode::num() const {
  if (node_->is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!node_->is_number()) wrong_type("a number");
  return node_->get<double>();
}

const std::string& JsonNode::str() const {
  if (!node_->is_string()) wrong_type("a string");
  return node_->get_ref<const std::string&>();
}

bool JsonNode::boolean() const {
  if (!node_->is_boolean()) wrong_type("true or false");
  return node_->get<bool>();
}

JsonNode parse_json(const std::string& text, const std::string& name) {
  auto doc = std::make_shared<nlohmann::json>();
  try {
    *doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(name + " is not JSON: " + without_tag(e.what()));
  }
  const nlohmann::json* root = doc.get();
  return JsonNode(std::move(doc), root, std::make_shared<const std::string>(name), "");
}

JsonNode read_json_file(const std::string& path) {
  std::string text;
  try {
    text = read_whole_file(path);
  } catch (const FileReadError& e) {
    throw std::runtime_error("cannot read " + path + ": " + e.what());
  }
  return parse_json(text, path);
}

}  // namespace ts
