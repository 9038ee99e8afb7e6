// The arithmetic of a deployed graph's nodes, written once: the INT8 engine
// (engine/infer/engine.h) runs it, and so does a simulated (fake-quant)
// model's forward in eval mode (engine/models/layers.h), so the two compute
// the same integer codes at every quantized tensor for every input:
//   codes     rint(clamp(x / step, +-max_code)), halves to even, step = s / bin
//   conv      quantized: conv(codes, int8 codes) summed exactly in float
//             (integers below 2^24), then * (input step * weight step[c]) +
//             bias (on the int32 grid), then the activation; float: the
//             folded float weight and bias, then the activation
//   mean      over H and W accumulated in double, so no layout or thread
//             count changes its float result
// Thread-compatible; any device (the CPU's kernels where they are faster).
#ifndef SEGQAT_ENGINE_EXPORT_DEPLOYED_OPS_H_
#define SEGQAT_ENGINE_EXPORT_DEPLOYED_OPS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "engine/export/graph.h"

namespace segqat::exports {

// What a conv node computes with, prepared once from its spec: for a
// quantized conv the weight's codes as float and the per-channel multiplier
// (1 x O x 1 x 1), else the float weight.
struct ConvKernel {
  at::Tensor weight, mul, bias;
  bool on_codes = false;
};
// on_codes: the conv sums integer codes (a quantized conv in the INT8
// engine or the simulation); false runs c's float weight.
ConvKernel PrepareConv(const ConvSpec& c, bool on_codes);

// A quantized conv's integer sums (float, channels-last on the CPU): its
// output before the scaling, bias and activation that RunConv applies.
// REQUIRES: k.on_codes.
at::Tensor ConvSums(const ConvSpec& c, const ConvKernel& k, const at::Tensor& codes);

// The node's activated float output. x: the input's codes at c.input_scale
// (as float) when k.on_codes, else the float input.
at::Tensor RunConv(const ConvSpec& c, const ConvKernel& k, const at::Tensor& x);

// The codes of a float tensor at `step`, as float, x's sizes (4-D on the
// CPU: channels-last).
at::Tensor ActivationCodes(const at::Tensor& x, float step, int64_t max_code);

// The mean over H and W (keeping them, size 1).
at::Tensor MeanHW(const at::Tensor& x);

// Bilinear resize (align_corners false) to height x width: the engine's
// kernel on the CPU (engine/infer/resize.h), upsample_bilinear2d elsewhere.
at::Tensor ResizeLike(const at::Tensor& x, int64_t height, int64_t width);

}  // namespace segqat::exports

#endif  // SEGQAT_ENGINE_EXPORT_DEPLOYED_OPS_H_
