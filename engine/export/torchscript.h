// The deploy graph as TorchScript (model.ts), written from C++ by compiling
// generated TorchScript source into a torch::jit::Module. `torch.jit.load`
// opens it in PyTorch, `torch::jit::load` in LibTorch. The forward pass
// computes what the converted model computes: activations fake-quantized
// with the exported steps (uint8, zero point 128), convs on int8 weight codes
// times their per-channel scales (the codes are what the file stores).
// A second method, forward_codes, computes the same and returns each
// quantized tensor's integer codes by node name (and "logits"), for
// `segqat-worker diff --runtime torchscript`.
// The module also carries the graph's structure as the string attribute
// "segqat_graph", from which ReadTorchScript rebuilds the DeployGraph for the
// INT8 engine.
#ifndef SEGQAT_ENGINE_EXPORT_TORCHSCRIPT_H_
#define SEGQAT_ENGINE_EXPORT_TORCHSCRIPT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/export/graph.h"

namespace segqat::exports {

absl::Status WriteTorchScript(const DeployGraph& graph, const std::string& path);

// NotFound for a missing file, InvalidArgument for a file that is not a
// TorchScript archive or not one segqat wrote.
absl::StatusOr<DeployGraph> ReadTorchScript(const std::string& path);

}  // namespace segqat::exports

#endif  // SEGQAT_ENGINE_EXPORT_TORCHSCRIPT_H_
