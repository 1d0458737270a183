// ONNX models in and out (issue 14): a graph written by PyTorch's torch.onnx.export or by
// tf2onnx mapped onto the network description (common/network.h), and a trained network
// written back as an ONNX inference graph. Parsed with the onnx.proto messages Debian's
// libonnx-dev ships (onnx_proto).
//
// Supported nodes, each mapped to a layer (docs/onnx.md has the table):
//   Conv (square kernel of any size, stride, pads equal on H and W or auto_pad, group 1,
//   dilation 1, optional bias), Relu (fused into the Conv, Gemm or Add it follows when it is
//   that node's only reader, else a layer of its own), the Erf subgraph PyTorch 1.13 exports for
//   nn.GELU, MaxPool and AveragePool (square, ceil_mode 0), GlobalAveragePool,
//   BatchNormalization (inference form: scale, bias, running mean and variance; trained like
//   PyTorch's affine BatchNorm2d, over fixed groups of kImportedBnGroup samples unless
//   --bn-group says otherwise), LRN, Flatten/Reshape to [N, -1] before a dense layer, Gemm
//   (transA 0, alpha = beta = 1) and MatMul + Add, Mul by a constant, Add of two branches, and
//   Identity/Dropout (skipped). Anything else is refused before anything starts, in one
//   sentence naming the node, its op and what is supported.
#pragma once
#include <string>
#include <vector>

#include "network.h"

namespace ts {

// Samples per batch-norm statistics group of an imported batch norm (network.h explains why
// statistics are over fixed groups): shares of a global batch of 128 deal whole for up to 4
// workers.
constexpr int kImportedBnGroup = 32;

struct ImportedModel {
  NetworkSpec net;                // input [3, 32, 32], 10 classes, init "pytorch"
  std::vector<float> params;      // the graph's initializers in the flat buffer's layout
  std::vector<std::string> missing_initializers;  // parameters the graph gave no value
};

// `bytes`: a serialized onnx.ModelProto; `source`: how to name it in messages. Throws
// std::invalid_argument (one sentence) for anything it cannot map exactly.
ImportedModel import_onnx(const std::string& bytes, const std::string& source);

// The network with `params` as an inference graph (opset 13, batch dimension "N"): batch norm
// in eval form (a net without a trained scale gets a constant scale of 1), GELU as the Erf
// subgraph, initializers named as the network's parameters. Returns the serialized model;
// the second form writes it to `path` (atomically). Throws std::runtime_error.
std::string export_onnx_bytes(const NetworkSpec& net, const float* params);
void export_onnx(const NetworkSpec& net, const float* params, const std::string& path);

}  // namespace ts
