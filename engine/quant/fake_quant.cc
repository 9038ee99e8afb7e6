#include "engine/quant/fake_quant.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "engine/quant/quant_config.h"

namespace segqat::quant {
namespace {

constexpr int64_t kGrain = 1 << 15;

bool FastPath(const at::Tensor& x) { return x.device().is_cpu() && x.scalar_type() == at::kFloat; }

// Half away from zero, as std::round, with tensor ops (any device).
at::Tensor RoundHalfAway(const at::Tensor& v) {
  at::Tensor t = at::trunc(v);
  return at::where((v - t).abs() == 0.5, t + at::sign(v), at::round(v));
}

// round(clip(x, -s, s) * bin / s) * back for n floats (weights), without
// branches so the loop vectorizes: |v| <= bin < 2^31, so truncation through
// int32 is exact, and with frac = v - trunc(v) in (-1, 1), trunc(2 * frac)
// is +1 or -1 exactly when |frac| >= 0.5: halves round away from zero.
void QuantizeRow(const float* __restrict in, float* __restrict out, int64_t n, float s, float bin,
                 float back) {
  const float to_int = bin / s;
  for (int64_t i = 0; i < n; ++i) {
    const float x = std::min(std::max(in[i], -s), s);
    const float v = x * to_int;
    const float t = static_cast<float>(static_cast<int32_t>(v));
    const float q = t + static_cast<float>(static_cast<int32_t>((v - t) * 2.0f));
    out[i] = q * back;
  }
}

// Adding and subtracting 1.5 * 2^23 rounds a float with |v| < 2^22 to the
// nearest integer, halves to even (the default rounding mode), branch-free:
// the engine's rule (engine/infer/qtensor.h).
constexpr float kRoundMagic = 12582912.0f;

// Activations, as the INT8 engine quantizes them: q = rint(clamp(x / step,
// -bin, bin)) with step = s / bin, written q * back (back = step to
// dequantize, 1 for the codes).
void ActivationRow(const float* __restrict in, float* __restrict out, int64_t n, float step,
                   float bin, float back) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::min(std::max(in[i] / step, -bin), bin);
    out[i] = ((v + kRoundMagic) - kRoundMagic) * back;
  }
}

at::Tensor PerTensorCpu(const at::Tensor& input, float s, float bin, bool dequantize) {
  at::Tensor x = input.contiguous();
  at::Tensor out = at::empty_like(x);
  if (s <= 0.f) return out.zero_();
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const float step = ActivationStep(s, bin);
  const float back = dequantize ? step : 1.f;
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    ActivationRow(in + begin, o + begin, end - begin, step, bin, back);
  });
  return out;
}

// Per-channel fake quantization of a contiguous float weight, fused:
// scales[c] = max|w[c]| and the quantized-dequantized weight in one pass each.
void PerChannelCpu(const at::Tensor& w, const at::Tensor& scales, float bin, bool dequantize,
                   at::Tensor* out) {
  const int64_t channels = w.size(0), row = w.numel() / std::max<int64_t>(1, channels);
  const float* in = w.data_ptr<float>();
  const float* sc = scales.data_ptr<float>();
  float* o = out->data_ptr<float>();
  at::parallel_for(0, channels, 16, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const float s = sc[c];
      if (s <= 0.f) {
        std::fill(o + c * row, o + (c + 1) * row, 0.f);
        continue;
      }
      QuantizeRow(in + c * row, o + c * row, row, s, bin, dequantize ? s / bin : 1.f);
    }
  });
}

at::Tensor PerTensorGeneric(const at::Tensor& x, float s, float bin, bool dequantize) {
  if (s <= 0.f) return at::zeros_like(x);
  const float step = ActivationStep(s, bin);
  at::Tensor q = at::round(at::clamp(x / step, -bin, bin));  // halves to even
  return dequantize ? q * step : q;
}

at::Tensor PerChannel(const at::Tensor& w, const at::Tensor& scales, float bin, bool dequantize) {
  if (FastPath(w) && scales.device().is_cpu() && scales.scalar_type() == at::kFloat) {
    at::Tensor wc = w.contiguous(), sc = scales.contiguous();
    at::Tensor out = at::empty_like(wc);
    PerChannelCpu(wc, sc, bin, dequantize, &out);
    return out;
  }
  std::vector<int64_t> shape(w.dim(), 1);
  shape[0] = w.size(0);
  at::Tensor s = scales.to(w.options()).view(shape);
  at::Tensor safe = at::where(s > 0, s, at::ones_like(s));
  at::Tensor q = RoundHalfAway(at::max(at::min(w, safe), -safe) * (bin / safe));
  q = at::where(s > 0, q, at::zeros_like(q));
  return dequantize ? q * (safe / bin) : q;
}

class FakeQuantFn : public torch::autograd::Function<FakeQuantFn> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& x, double scale,
                            int64_t bits) {
    at::AutoDispatchBelowADInplaceOrView guard;
    float bin = BinCount(static_cast<int>(bits));
    return FastPath(x) ? PerTensorCpu(x, static_cast<float>(scale), bin, true)
                       : PerTensorGeneric(x, static_cast<float>(scale), bin, true);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list grad) {
    return {grad[0], at::Tensor(), at::Tensor()};
  }
};

class FakeQuantPerChannelFn : public torch::autograd::Function<FakeQuantPerChannelFn> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& w,
                            const at::Tensor& scales, int64_t bits) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return PerChannel(w, scales, BinCount(static_cast<int>(bits)), true);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list grad) {
    return {grad[0], at::Tensor(), at::Tensor()};
  }
};

}  // namespace

float AbsMax(const at::Tensor& input) {
  if (input.numel() == 0) return 0.f;
  // One vectorized pass for min and max, no temporary |x|.
  auto [lo, hi] = at::aminmax(input.detach());
  return std::max(std::fabs(lo.item<float>()), std::fabs(hi.item<float>()));
}

at::Tensor ChannelAbsMax(const at::Tensor& w) {
  at::Tensor flat = w.detach().reshape({w.size(0), -1});
  auto [lo, hi] = at::aminmax(flat, 1);
  return at::maximum(lo.abs(), hi.abs()).to(at::kFloat);
}

at::Tensor QuantizeToInt(const at::Tensor& x, float scale, int bits) {
  at::NoGradGuard no_grad;
  float bin = BinCount(bits);
  return FastPath(x) ? PerTensorCpu(x, scale, bin, false) : PerTensorGeneric(x, scale, bin, false);
}

at::Tensor QuantizeToIntPerChannel(const at::Tensor& w, const at::Tensor& scales, int bits) {
  at::NoGradGuard no_grad;
  return PerChannel(w, scales, BinCount(bits), false);
}

at::Tensor FakeQuant(const at::Tensor& x, float scale, int bits) {
  return FakeQuantFn::apply(x, static_cast<double>(scale), static_cast<int64_t>(bits));
}

at::Tensor FakeQuantPerChannel(const at::Tensor& w, const at::Tensor& scales, int bits) {
  return FakeQuantPerChannelFn::apply(w, scales.detach(), static_cast<int64_t>(bits));
}

}  // namespace segqat::quant
