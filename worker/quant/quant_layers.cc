#include "worker/quant/quant_layers.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>

#include "worker/quant/fake_quant.h"

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

at::Tensor QuantizableLayer::WeightScales() const {
  if (weight_type_ == WeightQuantType::kAbsMax) {
    return at::full({weight.size(0)}, AbsMax(weight), at::TensorOptions().dtype(at::kFloat));
  }
  return ChannelAbsMax(weight);
}

at::Tensor QuantizableLayer::QuantizedWeight() const {
  return FakeQuantPerChannel(weight, WeightScales(), weight_bits_);
}

at::Tensor QuantizableLayer::QuantizedInput(const at::Tensor& x) {
  return mode_ == LayerMode::kFloat ? x : input_quant_->forward(x);
}

void QuantizableLayer::Convert() {
  at::NoGradGuard no_grad;
  ConvertedWeights c;
  c.weight_scale = WeightScales().contiguous();
  c.weight_int8 = QuantizeToIntPerChannel(weight, c.weight_scale, weight_bits_).to(at::kChar);
  c.weight_bits = weight_bits_;
  c.activation_bits = input_quant_->bits();
  c.input_scale = input_quant_->type() == ActivationQuantType::kAbsMax
                      ? 0.f
                      : input_quant_->ScaleFor(at::Tensor());
  converted_ = std::move(c);
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
  weight = register_parameter(
      "weight", at::empty({o.out(), o.in() / o.groups(), o.kernel(), o.kernel()}));
  // He (fan-out) initialisation, as torchvision's MobileNetV2.
  torch::nn::init::kaiming_normal_(weight, 0, torch::kFanOut, torch::kReLU);
  if (o.bias()) bias = register_parameter("bias", at::zeros({o.out()}));
}

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
    case LayerMode::kFakeQuant:
      return conv(QuantizedInput(x), QuantizedWeight(), bias);
    case LayerMode::kConverted: {
      auto [q, mul] = IntegerInput(x);
      at::Tensor w = converted()->weight_int8.to(x.device(), at::kFloat);
      at::Tensor y = conv(q, w, at::Tensor()) * mul.view({1, -1, 1, 1});
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
