// libFuzzer: the ONNX importer (common/onnx_model.h) on arbitrary bytes. It must refuse with
// std::invalid_argument, never crash; what it accepts must be a network the engine can build
// (finish_network's checks) with a parameter value for every float of the flat buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "onnx_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ts::ImportedModel m = ts::import_onnx(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    if (m.params.size() != m.net.num_params || m.net.layers.empty()) std::abort();
    // What it accepts, it can write back.
    (void)ts::export_onnx_bytes(m.net, m.params.data());
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
