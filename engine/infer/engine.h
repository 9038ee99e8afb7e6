// Runs a deploy graph on the CPU with LibTorch, channels-last.
//   kInt8   what the converted model computes: activations quantized where
//           the training quantized them (quint8, symmetric codes, zero point
//           0 for non-negative tensors and 128 for signed ones), each node
//           computing as exports/deployed_ops.h writes it, which is what the
//           simulated model's eval forward computes: the same codes at every
//           quantized tensor. With EngineOptions::integer_kernels, a conv
//           whose output is quantized (PlanQuantizedOutputs) runs on
//           LibTorch's integer kernels where they sum exactly (QNNPACK
//           always; oneDNN with VNNI always, without VNNI on non-negative
//           inputs and on 7-bit signed ones: exports::ExactInX86Int8Kernels),
//           faster but requantizing with the kernel's own float arithmetic.
//   kFloat  every conv in float on the graph's float weights (the baseline).
// Not thread-safe: one Run at a time (LibTorch parallelizes inside).
#ifndef SEGQAT_ENGINE_INFER_ENGINE_H_
#define SEGQAT_ENGINE_INFER_ENGINE_H_

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/export/deployed_ops.h"
#include "engine/export/graph.h"

namespace segqat::infer {

enum class Precision { kInt8, kFloat };

// Whether this CPU has an int8 dot product that sums u8 x s8 products in 32
// bits without saturating (AVX512_VNNI or AVX_VNNI: vpdpbusd). False off x86.
bool CpuHasVnni();

// Which rule decides the convs oneDNN runs on integers (QNNPACK: every one).
enum class X86Int8Rule {
  kDetect,  // kVnni when CpuHasVnni() (unless SEGQAT_X86_INT8_RULE=no-vnni), else kNoVnni
  kVnni,    // any input (only exact on a CPU with VNNI)
  kNoVnni,  // inputs whose uint8 values stay <= 127 (exact on any x86)
};

struct EngineOptions {
  X86Int8Rule x86_rule = X86Int8Rule::kDetect;
  // LibTorch's integer conv kernels (oneDNN, QNNPACK) for convs whose output
  // is quantized: exact sums, but each requantizes its sums with its own
  // float arithmetic, so a code near a rounding boundary can land one step
  // from the simulation's (the first conv where it happens parts the two).
  // Off: every quantized conv sums codes in float (exact) and rescales as
  // exports::RunConv does, computing the simulated model's codes exactly.
  bool integer_kernels = false;
  // oneDNN's int8 kernels for the integer sums of non-depthwise quantized
  // convs, where they are exact (the rule above), with float output: the
  // node's scaling, bias and activation then run as on the float path, so
  // the codes stay the simulation's. Off: those sums are taken in float.
  bool integer_sums = true;
};

// A conv whose integer sums come from oneDNN's int8 kernel: the prepacked
// weight codes and the unit scales and zero points the kernel takes.
struct IntegerSumConv {
  c10::IValue packed;
  at::Tensor unit_scales, zero_points;
};

class Engine {
 public:
  // InvalidArgument for a graph that does not validate.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(exports::DeployGraph graph,
                                                        Precision precision,
                                                        EngineOptions options = {});

  // image: float N x 3 x H x W (raw 0-255 RGB when the graph normalizes, else
  // normalized). Returns the logits, float N x C x H x W (contiguous).
  absl::StatusOr<at::Tensor> Run(const at::Tensor& image);

  // When on, Run adds each node's wall time (ms) to node_ms() (for benchmarks).
  void set_profile(bool on) { node_ms_.assign(on ? graph_.nodes.size() : 0, 0.0); }
  const std::vector<double>& node_ms() const { return node_ms_; }

  // While set, Run hands it the integer codes each quantized node computes
  // with (a conv on codes: its input's; an add: its output's), as float.
  // Convs on integer kernels report nothing. Null clears.
  using CodesProbe = std::function<void(const exports::Node& node, const at::Tensor& codes)>;
  void set_probe(CodesProbe probe) { probe_ = std::move(probe); }

  const exports::DeployGraph& graph() const { return graph_; }
  Precision precision() const { return precision_; }
  // The quantized engine in use ("onednn", "qnnpack"), or "" for kFloat.
  const std::string& qengine() const { return qengine_; }
  // How many convs run as integer kernels (integer_kernels).
  int integer_convs() const { return integer_convs_; }
  // How many convs take their integer sums from int8 kernels (integer_sums).
  int integer_sum_convs() const { return integer_sum_convs_; }
  // The rule that chose them: "vnni", "no-vnni" (oneDNN), "any" (QNNPACK), or "".
  const std::string& int8_rule() const { return int8_rule_; }

 private:
  Engine(exports::DeployGraph graph, Precision precision, EngineOptions options);
  void Prepare();
  void PrepackIntegerConvs(bool vnni);
  void PrepackIntegerSums(bool vnni);
  // The uint8 zero point `tensor` is quantized with.
  int64_t ZeroPoint(const std::string& tensor) const;

  exports::DeployGraph graph_;
  Precision precision_;
  EngineOptions options_;
  std::string qengine_, int8_rule_;
  int integer_convs_ = 0, integer_sum_convs_ = 0;
  std::vector<c10::IValue> packed_;   // per node: the prepacked int8 conv, or None
  std::vector<IntegerSumConv> sums_;  // per node: an int8-sums conv (packed None if not)
  // Per conv node not on an integer kernel: what it computes with.
  std::vector<exports::ConvKernel> kernels_;
  std::set<std::string> non_negative_;  // exports::NonNegativeTensors
  std::vector<double> node_ms_;
  CodesProbe probe_;
  std::map<std::string, size_t> last_use_;  // tensor -> the last node that reads it
};

// Process-wide: glibc keeps freed memory for reuse instead of handing large
// blocks back to the kernel, so each inference does not fault in its
// activations' pages anew (measured here: float 285 -> 172 ms, INT8 207 ->
// 133 ms at 1x3x512x1024). The process keeps its peak heap. Call once, from main.
void RetainFreedMemory();

// The LibTorch quantized engine Create picks: oneDNN when built in, else QNNPACK.
std::string PreferredQEngine();

}  // namespace segqat::infer

#endif  // SEGQAT_ENGINE_INFER_ENGINE_H_
