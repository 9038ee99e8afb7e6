// Runs a deploy graph on the CPU with LibTorch.
//   kInt8   quantized convs on LibTorch's quantized engine (oneDNN where the
//           build has it, else QNNPACK): activations quint8 with zero point
//           128 (the symmetric int8 codes), weights qint8 per channel,
//           channels-last. A conv whose output the graph quantizes
//           (PlanQuantizedOutputs) writes it as quint8 straight away; one
//           whose output goes on in float (to an add, the logits) runs as a
//           float conv on the dequantized codes, which gives the same values.
//   kFloat  every conv in float on the graph's float weights (the baseline).
// Both compute what the converted model computes, up to float rounding.
// Not thread-safe: one Run at a time (LibTorch parallelizes inside).
#ifndef SEGQAT_WORKER_INFER_ENGINE_H_
#define SEGQAT_WORKER_INFER_ENGINE_H_

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/export/graph.h"

namespace segqat::infer {

enum class Precision { kInt8, kFloat };

class Engine {
 public:
  // InvalidArgument for a graph that does not validate.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(exports::DeployGraph graph,
                                                        Precision precision);

  // image: float N x 3 x H x W (raw 0-255 RGB when the graph normalizes, else
  // normalized). Returns the logits, float N x C x H x W (contiguous).
  absl::StatusOr<at::Tensor> Run(const at::Tensor& image);

  const exports::DeployGraph& graph() const { return graph_; }
  Precision precision() const { return precision_; }
  // The quantized engine in use ("onednn", "qnnpack"), or "" for kFloat.
  const std::string& qengine() const { return qengine_; }
  // How many convs run as integer kernels.
  int integer_convs() const { return integer_convs_; }

 private:
  Engine(exports::DeployGraph graph, Precision precision);
  void Prepare();

  exports::DeployGraph graph_;
  Precision precision_;
  std::string qengine_;
  int integer_convs_ = 0;
  std::vector<c10::IValue> packed_;  // per node: the prepacked int8 conv, or None
};

// The LibTorch quantized engine Create picks: oneDNN when built in, else QNNPACK.
std::string PreferredQEngine();

}  // namespace segqat::infer

#endif  // SEGQAT_WORKER_INFER_ENGINE_H_
