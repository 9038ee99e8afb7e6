// Symmetric activations as LibTorch quint8 tensors: code = round(x / step)
// clamped to +-max_code (127 for 8 bits, 63 for 7, as the training's
// quantizer clips), stored as code + zero point, channels-last as the
// quantized kernels want. The zero point is 0 for non-negative tensors
// (codes 0..max_code) and max_code + 1 for signed ones
// (exports::ActivationZeroPoint).
// These kernels replace at::quantize_per_tensor / at::dequantize, whose CPU
// loops in LibTorch 1.13 are scalar (about 6 ns an element here, against 1).
// Rounding is half to even, as at::quantize_per_tensor and ONNX's
// QuantizeLinear do. Thread-safe; parallel over at::get_num_threads().
#ifndef SEGQAT_ENGINE_INFER_QTENSOR_H_
#define SEGQAT_ENGINE_INFER_QTENSOR_H_

#include <ATen/core/Tensor.h>

namespace segqat::infer {

// x: float, 4-D, any layout; zero_point 0 or max_code + 1 (with 0, negative
// values become code 0). Returns the quint8 tensor (channels-last).
at::Tensor QuantizeSymmetric(const at::Tensor& x, float step, int64_t zero_point, int64_t max_code);

// q: quint8. Returns float (q - zero point) * step in q's memory format.
at::Tensor DequantizeSymmetric(const at::Tensor& q);

// q (quint8) at another step, without going through float tensors:
// clamp(round((q - zp) * q_step / step)), as quantizing the dequantized
// values again computes. Channels-last.
at::Tensor RequantizeSymmetric(const at::Tensor& q, float step, int64_t zero_point,
                               int64_t max_code);

// The quantized add: clamp(round(((a - za) * a_step + (b - zb) * b_step) /
// step)) + zero_point, what fake-quantizing the sum of the two dequantized
// addends computes. a and b: quint8 of one shape. Channels-last.
at::Tensor AddSymmetric(const at::Tensor& a, const at::Tensor& b, float step, int64_t zero_point,
                        int64_t max_code);

// The integer codes as float (channels-last), for convs that run in float on
// them: clamp(round(x / step), +-max_code) of a float tensor, or q - zero
// point of a quint8 one. Float sums of products of such codes are exact
// integers while they stay below 2^24 (any conv with fewer than 1040 inputs
// per output at 8 bits).
at::Tensor CodesOf(const at::Tensor& x, float step, int64_t max_code);
at::Tensor CodesOf(const at::Tensor& q);

// A quantized conv's epilogue in one pass over its sums (float, 4-D,
// channels-last): y = acc * mul[c], then y + bias[c] (two roundings, as
// at::mul and at::add give), then the activation (0 none, 1 ReLU, 2 ReLU6),
// then, for the quantizing form, the codes at `step` as QuantizeSymmetric
// computes them. Exactly what exports::RunConv followed by quantization
// computes, in one pass instead of five.
at::Tensor ScaleBiasActivate(const at::Tensor& acc, const at::Tensor& mul, const at::Tensor& bias,
                             int act);
at::Tensor ScaleBiasActivateQuantize(const at::Tensor& acc, const at::Tensor& mul,
                                     const at::Tensor& bias, int act, float step,
                                     int64_t zero_point, int64_t max_code);

// In place: clamps q's codes to the symmetric range (+-max_code steps;
// 0..max_code with zero point 0), as a quantized kernel's output may reach
// any uint8.
void ClampToSymmetricRange(at::Tensor& q, int64_t max_code);

}  // namespace segqat::infer

#endif  // SEGQAT_ENGINE_INFER_QTENSOR_H_
