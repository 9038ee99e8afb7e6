// The deployed network as a flat graph: what the exporters write (ONNX,
// TorchScript) and what the INT8 engine runs. It is built from a converted
// (or float) model by tracing the model's structure once, with every batch
// norm folded into the conv before it:
//   quantized conv  int8 codes per output channel, scale = s_c / 127 (or with
//                   the batch norm's factor when QAT did not fold it), the
//                   input quantized per tensor with scale s_a / 127
//   float conv      the folded float weight (layers in not_quant_pattern)
// Tensors are named by the node that writes them; "image" is the input.
#ifndef SEGQAT_ENGINE_EXPORT_GRAPH_H_
#define SEGQAT_ENGINE_EXPORT_GRAPH_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace segqat::quant {
class QAddImpl;
class QConv2dImpl;
}  // namespace segqat::quant

namespace segqat::exports {

enum class OpKind {
  kNormalize,   // y = x * mul[c] + add[c] (raw 0-255 RGB to the normalized image)
  kConv,        // 2-D convolution + bias + activation
  kAdd,         // a + b
  kConcat,      // along channels
  kMean,        // global average over H, W (keeps the dims)
  kExpandLike,  // N x C x 1 x 1 broadcast to the H, W of inputs[1]
  kResizeLike,  // bilinear (align_corners false) to the H, W of inputs[1]
};
const char* OpKindName(OpKind kind);

enum class Act { kNone, kReLU, kReLU6 };

// The largest int32 bias code (a float32 that converts back to int32 exactly).
constexpr double kMaxBiasCode = 2147483520.0;

struct ConvSpec {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  Act act = Act::kNone;
  at::Tensor weight;  // float O x I/g x k x k: the values computed with
  at::Tensor bias;    // float O; for quantized convs a whole multiple
                      // (|code| <= kMaxBiasCode) of input_scale * weight_scale
  // Quantized convs only (undefined / 0 for float ones):
  at::Tensor weight_int8;   // int8 codes; weight == weight_int8 * weight_scale
  at::Tensor weight_scale;  // float O, > 0
  float input_scale = 0;    // the input's step: x_q = clamp(round(x / input_scale))
  // Set by PlanQuantizedOutputs: the step the (activated) output is
  // quantized with, because every consumer quantizes it so (0: float output).
  float output_scale = 0;

  bool quantized() const { return input_scale > 0; }
};

// A quantized add (SLIM.quant_add): y = q(q(a, a_scale) + q(b, b_scale),
// output_scale), where q(x, step) = clamp(round(x / step), +-max_code) * step.
// All 0 for a float add.
struct AddSpec {
  float a_scale = 0, b_scale = 0, output_scale = 0;  // steps

  bool quantized() const { return output_scale > 0; }
  // The step input `i` (0 or 1) is quantized with.
  float input_scale(size_t i) const { return i == 0 ? a_scale : b_scale; }
};

struct Node {
  OpKind kind = OpKind::kConv;
  std::string name;                 // the model's layer name ("backbone.features.1.conv.0")
  std::vector<std::string> inputs;  // tensor names
  std::string output;               // tensor name
  ConvSpec conv;                    // kConv
  AddSpec sum;                      // kAdd
  std::vector<float> mul, add;      // kNormalize
};

struct DeployGraph {
  std::string input = "image";
  std::string output = "logits";
  int64_t num_classes = 0;
  // Of every quantized activation: 8, or 7 (SLIM.activation_bits 7: codes
  // +-63, on which x86's int8 kernels are exact for signed tensors too).
  int activation_bits = 8;
  std::vector<Node> nodes;  // in execution order

  // The largest activation code: 127 (8 bits) or 63 (7 bits).
  int64_t max_code() const { return (int64_t{1} << (activation_bits - 1)) - 1; }

  int QuantizedConvCount() const;
  // Bytes of the conv weights as deployed (int8 codes + scales, or float).
  int64_t WeightBytes() const;
  // The same network with float weights, for the float baseline.
  int64_t FloatWeightBytes() const;
};

// Checks that every input is defined before use, the output is produced,
// specs are consistent (shapes, scales > 0); the error names the node.
absl::Status ValidateGraph(const DeployGraph& graph);

// Marks each quantized conv whose output goes only to quantized convs and
// quantized adds that all use one input scale: that output is quantized
// there and then, which is exactly what those consumers would do to it
// (after the activation).
void PlanQuantizedOutputs(DeployGraph& graph);

// The tensors that cannot be negative: outputs of ReLU / ReLU6 convs, and
// what mean, expand, resize or concat make of those alone.
std::set<std::string> NonNegativeTensors(const DeployGraph& graph);

// The zero point an activation is stored with as uint8: 0 for a
// non-negative tensor (codes 0..max_code), max_code + 1 for a signed one.
int64_t ActivationZeroPoint(bool non_negative, int64_t max_code);

// Whether x86's int8 dot product without VNNI (vpmaddubsw: oneDNN, ONNX
// Runtime's u8 x s8 kernels) is exact on this activation with int8 weights.
// It adds pairs of u8 x s8 products in saturating 16 bits: exact while the
// uint8 values stay <= 127 (2 * 127 * 127 < 2^15); with 8-bit signed
// activations (values up to 255) up to half the outputs come out wrong.
bool ExactInX86Int8Kernels(int64_t zero_point, int64_t max_code);

// Thrown by GraphBuilder when a model cannot be exported; the message names
// the layer.
struct TraceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The conv node that deploys `conv` with `bn` (null: none) folded in and
// `act` after it, its tensors on the conv's device. A converted conv gives
// its int8 codes; a fake-quant one what Convert would fix now (so the
// simulated eval forward computes the node, engine/export/deployed_ops.h);
// a float one, or a fake-quant one not simulated, its folded float weight.
// Sets *activation_bits (may be null) for a quantized conv. Throws
// TraceError naming `name` when the conv cannot be deployed (abs_max
// activations, weights not 8-bit, activations not 8 or 7 bits).
ConvSpec DeployedConv(const std::string& name, const quant::QConv2dImpl& conv,
                      const torch::nn::BatchNorm2dImpl* bn, Act act, int* activation_bits);

// Collects the nodes while a model traces itself (see Traceable).
class GraphBuilder {
 public:
  explicit GraphBuilder(DeployGraph* graph) : graph_(graph) {}

  std::string Normalize(const std::string& x, std::vector<float> mul, std::vector<float> add);
  // `bn` (may be null) is folded in; the conv must be float or converted.
  std::string Conv(const std::string& name, const quant::QConv2dImpl& conv,
                   const torch::nn::BatchNorm2dImpl* bn, Act act, const std::string& x);
  // `q` (may be null): a converted QAdd, whose scales the node takes; a
  // float one adds in float.
  std::string Add(const std::string& name, const std::string& a, const std::string& b,
                  const quant::QAddImpl* q = nullptr);
  std::string Concat(const std::string& name, const std::vector<std::string>& inputs);
  std::string Mean(const std::string& name, const std::string& x);
  std::string ExpandLike(const std::string& name, const std::string& x, const std::string& ref);
  std::string ResizeLike(const std::string& name, const std::string& x, const std::string& ref);

  // Traces a Sequential-like module: [conv, bn?, activation?] runs become one
  // conv node, nested Sequentials and Traceable modules recurse, dropout is skipped.
  std::string Sequential(const std::string& name, const torch::nn::Module& module,
                         const std::string& x);
  // One module: a conv, a Traceable or a Sequential-like container.
  std::string Module(const std::string& name, const torch::nn::Module& module,
                     const std::string& x);

 private:
  std::string Emit(Node node);

  DeployGraph* graph_;
};

// A model part that can describe its forward pass to a GraphBuilder.
class Traceable {
 public:
  virtual ~Traceable() = default;
  // `name` is the module's qualified name; returns the output tensor's name.
  virtual std::string Trace(GraphBuilder& g, const std::string& name,
                            const std::string& x) const = 0;
};

}  // namespace segqat::exports

#endif  // SEGQAT_ENGINE_EXPORT_GRAPH_H_
