#include "engine/quant/quant_layers.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>

#include "engine/quant/fake_quant.h"

namespace segqat::quant {

void QuantizableLayer::EnableQuant(const QuantConfig& config) {
  // PaddleSlim quantizes mul (linear) weights per tensor.
  weight_type_ = op_type() == "mul" ? WeightQuantType::kAbsMax : config.weight_type;
  weight_bits_ = config.weight_bits;
  if (!input_quant_) {
    input_quant_ = register_module(
        "input_quant", ActivationQuantizer(config.activation_type, config.activation_bits,
                                           config.moving_rate, config.window_size));
  }
  mode_ = LayerMode::kFakeQuant;
}

at::Tensor QuantizableLayer::WeightScales(const at::Tensor& w) const {
  if (weight_type_ == WeightQuantType::kAbsMax) {
    return at::full({w.size(0)}, AbsMax(w), at::TensorOptions().dtype(at::kFloat));
  }
  return ChannelAbsMax(w);
}

at::Tensor QuantizableLayer::QuantizedWeight() const {
  if (!simulated_) return weight;
  at::Tensor w = WeightToQuantize();
  return FakeQuantPerChannel(w, WeightScales(w), weight_bits_);
}

at::Tensor QuantizableLayer::QuantizedInput(const at::Tensor& x) {
  if (mode_ == LayerMode::kFloat) return x;
  // Calibration observes the input of a layer that is not simulated too.
  if (!simulated_ && !input_quant_->observing()) return x;
  return input_quant_->forward(x);
}

ConvertedWeights QuantizableLayer::Conversion() const {
  TORCH_CHECK(mode_ == LayerMode::kFakeQuant, "Conversion needs a fake-quant layer");
  at::NoGradGuard no_grad;
  ConvertedWeights c;
  at::Tensor w = WeightToQuantize();
  c.weight_scale = WeightScales(w).contiguous();
  c.weight_int8 = QuantizeToIntPerChannel(w, c.weight_scale, weight_bits_).to(at::kChar);
  c.weight_bits = weight_bits_;
  c.activation_bits = input_quant_->bits();
  c.input_scale = input_quant_->type() == ActivationQuantType::kAbsMax
                      ? 0.f
                      : input_quant_->ScaleFor(at::Tensor());
  if (auto* conv = dynamic_cast<const QConv2dImpl*>(this); conv && conv->folded_bn()) {
    c.bn_scale = BatchNormScale(*conv->folded_bn()).contiguous();
  }
  return c;
}

void QuantizableLayer::Convert() {
  converted_ = Conversion();
  mode_ = LayerMode::kConverted;
}

std::pair<at::Tensor, at::Tensor> QuantizableLayer::IntegerInput(const at::Tensor& x) {
  const ConvertedWeights& c = *converted_;
  float s_a = c.input_scale > 0 ? c.input_scale : AbsMax(x);
  at::Tensor q = QuantizeToInt(x, s_a, c.activation_bits);
  at::Tensor mul = c.weight_scale.to(x.device()) *
                   (s_a / (BinCount(c.weight_bits) * BinCount(c.activation_bits)));
  return {q, mul};
}

QConv2dImpl::QConv2dImpl(const QConv2dOptions& o) : options_(o) {
  weight = register_parameter("weight",
                              at::empty({o.out(), o.in() / o.groups(), o.kernel(), o.kernel()}));
  // He (fan-out) initialisation, as torchvision's MobileNetV2.
  torch::nn::init::kaiming_normal_(weight, 0, torch::kFanOut, torch::kReLU);
  if (o.bias()) bias = register_parameter("bias", at::zeros({o.out()}));
}

at::Tensor BatchNormScale(const torch::nn::BatchNorm2dImpl& bn) {
  at::Tensor inv_std = at::rsqrt(bn.running_var + bn.options.eps());
  return bn.weight.defined() ? bn.weight * inv_std : inv_std;
}

void QConv2dImpl::FoldBatchNorm(std::shared_ptr<torch::nn::BatchNorm2dImpl> bn) {
  TORCH_CHECK(mode() != LayerMode::kConverted, "FoldBatchNorm on a converted conv");
  TORCH_CHECK(bn && bn->options.num_features() == options_.out(),
              "FoldBatchNorm: the batch norm does not fit the conv's output channels");
  bn_ = std::move(bn);
}

at::Tensor QConv2dImpl::BnScale() const { return BatchNormScale(*bn_); }

at::Tensor QConv2dImpl::WeightToQuantize() const {
  if (!bn_) return weight;
  return weight * BnScale().view({-1, 1, 1, 1});
}

namespace {

// y / scale per output channel; channels whose scale is 0 have a zero weight
// after folding, so their output is 0 too.
at::Tensor UnfoldOutput(const at::Tensor& y, const at::Tensor& scale) {
  at::Tensor safe = at::where(scale == 0, at::ones_like(scale), scale);
  return y / safe.to(y.device()).view({1, -1, 1, 1});
}

}  // namespace

std::string QConv2dImpl::op_type() const {
  return options_.groups() > 1 && options_.groups() == options_.in() ? "depthwise_conv2d"
                                                                     : "conv2d";
}

at::Tensor QConv2dImpl::forward(const at::Tensor& x) {
  const auto& o = options_;
  auto conv = [&](const at::Tensor& in, const at::Tensor& w, const at::Tensor& b) {
    return at::conv2d(in, w, b, {o.stride(), o.stride()}, {o.padding(), o.padding()},
                      {o.dilation(), o.dilation()}, o.groups());
  };
  switch (mode()) {
    case LayerMode::kFloat:
      return conv(x, weight, bias);
    case LayerMode::kFakeQuant: {
      // Not simulated: exactly the float layer (no batch norm folded in).
      if (!bn_ || !simulated()) return conv(QuantizedInput(x), QuantizedWeight(), bias);
      at::Tensor y =
          UnfoldOutput(conv(QuantizedInput(x), QuantizedWeight(), at::Tensor()), BnScale());
      return bias.defined() ? y + bias.view({1, -1, 1, 1}) : y;
    }
    case LayerMode::kConverted: {
      auto [q, mul] = IntegerInput(x);
      at::Tensor w = converted()->weight_int8.to(x.device(), at::kFloat);
      at::Tensor y = conv(q, w, at::Tensor()) * mul.view({1, -1, 1, 1});
      if (converted()->bn_scale.defined()) y = UnfoldOutput(y, converted()->bn_scale);
      return bias.defined() ? y + bias.view({1, -1, 1, 1}) : y;
    }
  }
  return x;
}

QLinearImpl::QLinearImpl(int64_t in, int64_t out, bool with_bias) {
  weight = register_parameter("weight", at::empty({out, in}));
  torch::nn::init::normal_(weight, 0, 0.01);
  if (with_bias) bias = register_parameter("bias", at::zeros({out}));
}

at::Tensor QLinearImpl::forward(const at::Tensor& x) {
  switch (mode()) {
    case LayerMode::kFloat:
      return at::linear(x, weight, bias);
    case LayerMode::kFakeQuant:
      return at::linear(QuantizedInput(x), QuantizedWeight(), bias);
    case LayerMode::kConverted: {
      auto [q, mul] = IntegerInput(x);
      at::Tensor y = at::linear(q, converted()->weight_int8.to(x.device(), at::kFloat)) * mul;
      return bias.defined() ? y + bias : y;
    }
  }
  return x;
}

}  // namespace segqat::quant
