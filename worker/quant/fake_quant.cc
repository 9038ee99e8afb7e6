#include "worker/quant/fake_quant.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "worker/quant/quant_config.h"

namespace segqat::quant {
namespace {

constexpr int64_t kGrain = 1 << 15;

bool FastPath(const at::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat;
}

// Half away from zero, as std::round, with tensor ops (any device).
at::Tensor RoundHalfAway(const at::Tensor& v) {
  at::Tensor t = at::trunc(v);
  return at::where((v - t).abs() == 0.5, t + at::sign(v), at::round(v));
}

// Writes q * out_mul where q = round(clip(x, -s, s) * bin / s); out_mul = s/bin
// for fake quantization or 1 for integer codes.
at::Tensor PerTensorCpu(const at::Tensor& input, float s, float bin, bool dequantize) {
  at::Tensor x = input.contiguous();
  at::Tensor out = at::empty_like(x);
  if (s <= 0.f) return out.zero_();
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const float to_int = bin / s;
  const float back = dequantize ? s / bin : 1.f;
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float v = std::min(std::max(in[i], -s), s);
      o[i] = std::round(v * to_int) * back;
    }
  });
  return out;
}

at::Tensor PerTensorGeneric(const at::Tensor& x, float s, float bin, bool dequantize) {
  if (s <= 0.f) return at::zeros_like(x);
  at::Tensor q = RoundHalfAway(x.clamp(-s, s) * (bin / s));
  return dequantize ? q * (s / bin) : q;
}

at::Tensor PerChannel(const at::Tensor& w, const at::Tensor& scales, float bin, bool dequantize) {
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
  if (!FastPath(input)) return input.detach().abs().max().item<float>();
  at::Tensor x = input.detach().contiguous();
  const float* p = x.data_ptr<float>();
  return at::parallel_reduce(
      0, x.numel(), kGrain, 0.f,
      [&](int64_t begin, int64_t end, float acc) {
        for (int64_t i = begin; i < end; ++i) acc = std::max(acc, std::fabs(p[i]));
        return acc;
      },
      [](float a, float b) { return std::max(a, b); });
}

at::Tensor ChannelAbsMax(const at::Tensor& w) {
  return w.detach().abs().reshape({w.size(0), -1}).amax(1).to(at::kFloat);
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
