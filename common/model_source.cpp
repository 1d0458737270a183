#include "model_source.h"

#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>


namespace ts {

namespace {

const char kPrefix[] = "onnx:";

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "onnx:seed.onnx@1a2b3c4d" -> "seed.onnx", for messages.
std::string file_of(const std::string& model) {
  if (model.rfind(kPrefix, 0) != 0) return model;
  const std::string rest = model.substr(sizeof kPrefix - 1);
  return rest.substr(0, rest.rfind('@'));
}

}  // namespace

std::string onnx_model_name(const std::string& path, const std::string& bytes) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x",
                unsigned(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size()))));
  return kPrefix + base_name(path) + "@" + hex;
}

bool is_onnx_model_name(const std::string& model) { return model.rfind(kPrefix, 0) == 0; }

std::string read_model_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(path + " cannot be read (does it exist?): name an ONNX file, e.g. one "
                                       "written by torch.onnx.export");
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().empty()) throw std::invalid_argument(path + " is empty: name an ONNX model file");
  return s.str();
}

NetworkSpec network_for(const std::string& model, const std::string& bytes) {
  if (bytes.empty()) {
    if (is_onnx_model_name(model))
      throw std::invalid_argument("model " + model + " is an ONNX graph, and its bytes are missing");
    return build_network(model);
  }
  return import_model(model, bytes).net;
}

ImportedModel import_model(const std::string& model, const std::string& bytes) {
  ImportedModel m = import_onnx(bytes, file_of(model));
  m.net.name = model;
  return m;
}

std::vector<float> initial_params_of(const ImportedModel& m) {
  if (!m.missing_initializers.empty())
    throw std::invalid_argument("--init-from-model: " + m.net.name + " has no initializer for " +
                                m.missing_initializers.front() +
                                ": export it with its weights (torch.onnx.export(..., export_params=True)), "
                                "or drop --init-from-model to initialize as PyTorch would");
  return m.params;
}

}  // namespace ts
