// The deploy graph as a standard ONNX model (opset 13) in QDQ form, built
// with libonnx's protobuf types and checked with its checker:
//   a quantized conv   x -> QuantizeLinear -> DequantizeLinear -> Conv, the
//                      weight int8 per output channel (axis 0, zero point 0)
//                      behind a DequantizeLinear, the bias int32 at scale
//                      s_x * s_w[c]; when PlanQuantizedOutputs quantized the
//                      output, the activation is followed by Q -> DQ too, so
//                      ONNX Runtime runs the conv as an integer kernel
//   activations        uint8 with zero point 128: code - 128 is exactly the
//                      symmetric int8 value, and x86 kernels run u8 x s8
//   a quantized add    DequantizeLinear on both addends -> Add ->
//                      QuantizeLinear (ONNX Runtime's QLinearAdd)
//   float convs        plain Conv with the folded float weight
// Input "image" float32 N x 3 x H x W, output "logits" float32 N x C x H x W
// (N, H and W symbolic).
#ifndef SEGQAT_ENGINE_EXPORT_ONNX_MODEL_H_
#define SEGQAT_ENGINE_EXPORT_ONNX_MODEL_H_

#include <string>

#include "absl/status/status.h"
#include "engine/export/graph.h"

namespace segqat::exports {

inline constexpr int kOnnxOpset = 13;

// How the quantized convs and adds are written (FREEZE.ONNX_FORM):
//   kQdq    the QDQ form above, which ONNX Runtime fuses into QLinearConv and
//           QLinearAdd and TensorRT reads as explicit quantization: fast,
//           but their requantization rounds a few codes differently
//   kExact  a quantized conv as ConvInteger on the uint8 codes (exact
//           integer sums), Cast, Mul by input step x weight step[c], Add
//           bias, then QuantizeLinear; a quantized add as DequantizeLinear,
//           Sum, QuantizeLinear: ONNX Runtime computes the INT8 engine's
//           codes (slower; TensorRT does not take ConvInteger)
enum class OnnxForm { kQdq, kExact };

struct OnnxOptions {
  OnnxForm form = OnnxForm::kQdq;
  // The weights of convs on 8-bit signed activations (zero point 128):
  //   false  the int8 codes stored as uint8 with zero point 128, which
  //          ONNX Runtime runs with u8 x u8 kernels, exact on any CPU (its
  //          u8 x s8 kernels saturate on x86 without VNNI, ExactInX86Int8Kernels)
  //   true   int8 (zero point 0) like every other conv: ONNX Runtime's
  //          faster u8 x s8 kernels, exact on CPUs with VNNI, GPUs and
  //          TensorRT; inexact on x86 without VNNI (FREEZE.ONNX_INT8_WEIGHTS)
  bool int8_weights_everywhere = false;
};

// Writes `graph` (validated) to `path` after onnx::checker accepts it.
absl::Status WriteOnnx(const DeployGraph& graph, const std::string& path, OnnxOptions options = {});

// The output of a conv node's Conv op in model.onnx (before its activation
// and requantization), for tools that look inside the model (the layer diff).
std::string OnnxConvOutputName(const Node& conv);

}  // namespace segqat::exports

#endif  // SEGQAT_ENGINE_EXPORT_ONNX_MODEL_H_
