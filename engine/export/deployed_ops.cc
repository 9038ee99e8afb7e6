#include "engine/export/deployed_ops.h"

#include <ATen/ATen.h>

#include "engine/infer/qtensor.h"
#include "engine/infer/resize.h"

namespace segqat::exports {
namespace {

// A float conv, on oneDNN's kernels for a CPU tensor where LibTorch has
// them (channels-last in, channels-last out).
at::Tensor FloatConv(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                     const ConvSpec& c) {
  if (x.is_cpu() && at::hasMKLDNN()) {
    return at::mkldnn_convolution(x.contiguous(at::MemoryFormat::ChannelsLast), w, bias,
                                  {c.padding, c.padding}, {c.stride, c.stride},
                                  {c.dilation, c.dilation}, c.groups);
  }
  return at::conv2d(x, w, bias, {c.stride, c.stride}, {c.padding, c.padding},
                    {c.dilation, c.dilation}, c.groups);
}

at::Tensor Activate(at::Tensor y, Act act) {
  if (act == Act::kReLU) return at::relu_(y);
  if (act == Act::kReLU6) return at::clamp_(y, 0.0, 6.0);
  return y;
}

}  // namespace

ConvKernel PrepareConv(const ConvSpec& c, bool on_codes) {
  ConvKernel k;
  k.on_codes = on_codes && c.quantized();
  if (k.on_codes) {
    k.weight = c.weight_int8.to(at::kFloat).contiguous();
    k.mul = (c.weight_scale * c.input_scale).view({1, -1, 1, 1});
    k.bias = c.bias.view({1, -1, 1, 1});
  } else {
    k.weight = c.weight;
    k.bias = c.bias;
  }
  return k;
}

at::Tensor ConvSums(const ConvSpec& c, const ConvKernel& k, const at::Tensor& codes) {
  return FloatConv(codes, k.weight, {}, c);
}

at::Tensor RunConv(const ConvSpec& c, const ConvKernel& k, const at::Tensor& x) {
  if (!k.on_codes) return Activate(FloatConv(x, k.weight, k.bias, c), c.act);
  // The sums of integer products are exact; the scaling then rounds once
  // per multiply and once per add, in this order, wherever it runs (the
  // engine's one-pass form: infer::ScaleBiasActivate).
  at::Tensor y = ConvSums(c, k, x);
  return Activate(y.mul_(k.mul).add_(k.bias), c.act);
}

at::Tensor ActivationCodes(const at::Tensor& x, float step, int64_t max_code) {
  if (x.is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4) {
    return infer::CodesOf(x, step, max_code);
  }
  const auto hi = static_cast<double>(max_code);
  return at::round(at::clamp(x / step, -hi, hi));  // halves to even
}

at::Tensor MeanHW(const at::Tensor& x) {
  return x.to(at::kDouble).mean({2, 3}, /*keepdim=*/true).to(x.scalar_type());
}

at::Tensor ResizeLike(const at::Tensor& x, int64_t height, int64_t width) {
  if (x.is_cpu() && x.scalar_type() == at::kFloat) {
    return infer::ResizeBilinear(x, height, width);
  }
  return at::upsample_bilinear2d(x, {height, width}, /*align_corners=*/false);
}

}  // namespace segqat::exports
