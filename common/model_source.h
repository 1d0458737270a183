// The network a run trains: a built-in net by name (common/network.h), or the graph of an ONNX
// model file (--model-file, common/onnx_model.h). The coordinator reads the file once; the
// Welcome carries its bytes, and every worker imports them as the coordinator did, so both
// hold the same description (the same layers, shapes and parameter offsets).
#pragma once
#include <string>
#include <vector>

#include "network.h"
#include "onnx_model.h"

namespace ts {

// "onnx:" + the file's name + "@" + the CRC-32 of its bytes: the run's model name (reports,
// checkpoints, --resume's comparison of settings), which changes when the file does.
std::string onnx_model_name(const std::string& path, const std::string& bytes);
bool is_onnx_model_name(const std::string& model);

// The file's bytes. Throws std::invalid_argument naming the file and what is wrong.
std::string read_model_file(const std::string& path);

// `bytes` empty: build_network(model); else the ONNX graph. Throws std::invalid_argument.
NetworkSpec network_for(const std::string& model, const std::string& bytes);

// The ONNX graph and its initializers, the network named `model`. Throws
// std::invalid_argument.
ImportedModel import_model(const std::string& model, const std::string& bytes);

// The graph's initializers in the network's flat buffer (--init-from-model); throws
// std::invalid_argument naming a parameter without one.
std::vector<float> initial_params_of(const ImportedModel& m);

}  // namespace ts
