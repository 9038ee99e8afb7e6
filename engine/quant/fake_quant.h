// Quantize-dequantize kernels. bin = 2^(bits-1) - 1; a scale of 0 maps
// everything to 0.
//   weights (per channel), PaddleSlim 1.x semantics:
//     q = round(clip(w, -s, s) * bin / s), w_hat = q * s / bin, halves away from zero
//   activations (per tensor), what the INT8 engine computes, so that a
//   simulated model and its converted one meet on the same codes:
//     step = s / bin, q = rint(clamp(x / step, -bin, bin)), x_hat = q * step,
//     halves to even (as ONNX QuantizeLinear and at::quantize_per_tensor)
// The autograd versions pass the gradient through unchanged (identity
// straight-through estimator, as PaddleSlim's rewired grad ops do).
// All functions are thread-compatible and keep the input's device.
#ifndef SEGQAT_ENGINE_QUANT_FAKE_QUANT_H_
#define SEGQAT_ENGINE_QUANT_FAKE_QUANT_H_

#include <ATen/core/Tensor.h>

namespace segqat::quant {

// max |x| over the whole tensor, as a float.
float AbsMax(const at::Tensor& x);
// max |w[c]| for each slice c of dimension 0; a float tensor of size(0).
at::Tensor ChannelAbsMax(const at::Tensor& w);

// The step of activation codes: s / bin, as one float division everywhere
// (the engine, the exports and the simulation use this very value).
inline float ActivationStep(float scale, float bin) { return scale / bin; }

// Integer codes q (as float values) for a per-tensor scale. No autograd.
at::Tensor QuantizeToInt(const at::Tensor& x, float scale, int bits);
// Integer codes per slice of dimension 0 with scales (size(0)). No autograd.
at::Tensor QuantizeToIntPerChannel(const at::Tensor& w, const at::Tensor& scales, int bits);

// x_hat for a per-tensor scale, differentiable w.r.t. x (identity STE).
at::Tensor FakeQuant(const at::Tensor& x, float scale, int bits);
// x_hat per slice of dimension 0, differentiable w.r.t. w (identity STE).
at::Tensor FakeQuantPerChannel(const at::Tensor& w, const at::Tensor& scales, int bits);

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_FAKE_QUANT_H_
