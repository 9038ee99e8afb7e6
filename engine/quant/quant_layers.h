// Layers that carry their own quantizers (as NVIDIA's QuantConv2d does):
// a convolution (PaddleSlim op types conv2d / depthwise_conv2d) and a linear
// layer (op type mul). A layer runs in one of three modes:
//   kFloat     plain float layer (the state after construction)
//   kFakeQuant quant_aware: input and weight are quantized-dequantized
//   kConverted convert: the weight is held as int8 codes with per-channel
//              scales and the layer computes with those integers
// Parameter names match torch.nn.Conv2d / Linear ("weight", "bias"), so
// PyTorch state dicts load. Not thread-safe (modules never are).
#ifndef SEGQAT_ENGINE_QUANT_QUANT_LAYERS_H_
#define SEGQAT_ENGINE_QUANT_QUANT_LAYERS_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <optional>
#include <string>

#include "engine/quant/activation_quantizer.h"
#include "engine/quant/quant_config.h"

namespace segqat::quant {

enum class LayerMode { kFloat, kFakeQuant, kConverted };

// What a converted layer computes with; exporters read it.
struct ConvertedWeights {
  at::Tensor weight_int8;   // kChar, the weight's shape
  at::Tensor weight_scale;  // float, one per output channel (s_c, not s_c/127)
  float input_scale = 0;    // s_a (0 with abs_max activations: per batch)
  // gamma / sqrt(running_var + eps) of the batch norm folded into the codes
  // (undefined when none was): the layer divides its output by it, and the
  // batch norm that follows multiplies it back.
  at::Tensor bn_scale;
  int weight_bits = 8;
  int activation_bits = 8;
};

class QuantizableLayer : public torch::nn::Module {
 public:
  // "conv2d", "depthwise_conv2d" or "mul".
  virtual std::string op_type() const = 0;
  // Float -> fake quant: adds the input quantizer (a submodule "input_quant").
  void EnableQuant(const QuantConfig& config);
  // Fake quant -> converted: fixes int8 weights from the current float weights.
  // REQUIRES: mode() == kFakeQuant.
  void Convert();
  // What Convert would fix from the current weights and quantizer state,
  // without converting (the simulated eval forward computes with it).
  // REQUIRES: mode() == kFakeQuant.
  ConvertedWeights Conversion() const;
  LayerMode mode() const { return mode_; }
  const std::optional<ConvertedWeights>& converted() const { return converted_; }
  const ActivationQuantizer& input_quantizer() const { return input_quant_; }
  // kFakeQuant only: false computes exactly as the float layer does (input
  // and weight unquantized, no batch norm folded in) while the quantizer
  // state stays, as a sensitivity scan turns layers on one at a time. Not
  // saved; true after construction.
  void set_simulated(bool on) { simulated_ = on; }
  bool simulated() const { return simulated_; }

  at::Tensor weight, bias;  // bias undefined when absent

 protected:
  // The float weight that is quantized: the weight itself, or for a conv
  // with a folded batch norm, the weight scaled by bn_scale.
  virtual at::Tensor WeightToQuantize() const { return weight; }
  // The weight as the layer computes with it in kFakeQuant mode.
  at::Tensor QuantizedWeight() const;
  // kFakeQuant: fake-quantized input; kFloat: x.
  at::Tensor QuantizedInput(const at::Tensor& x);
  // kConverted: the input's integer codes and the per-output-channel
  // multiplier s_w[c] * s_a / (bin_w * bin_a) that turns integer sums back to floats.
  std::pair<at::Tensor, at::Tensor> IntegerInput(const at::Tensor& x);

  WeightQuantType weight_type_ = WeightQuantType::kChannelWiseAbsMax;
  int weight_bits_ = 8;

 private:
  at::Tensor WeightScales(const at::Tensor& w) const;

  LayerMode mode_ = LayerMode::kFloat;
  bool simulated_ = true;
  ActivationQuantizer input_quant_{nullptr};
  std::optional<ConvertedWeights> converted_;
};

struct QConv2dOptions {
  QConv2dOptions(int64_t in, int64_t out, int64_t kernel) : in_(in), out_(out), kernel_(kernel) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, kernel);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding) = 0;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, bias) = false;
};

class QConv2dImpl : public QuantizableLayer {
 public:
  explicit QConv2dImpl(const QConv2dOptions& options);
  at::Tensor forward(const at::Tensor& x);
  std::string op_type() const override;
  const QConv2dOptions& options() const { return options_; }

  // Folds `bn`, the batch norm right after this conv, into the weight that is
  // fake-quantized (the ConvBn scheme of PyTorch's QAT, Krishnamoorthi 2018):
  // the weight is scaled by gamma/sqrt(running_var + eps) before quantization
  // and the output divided by it again, so `bn` (still its own module, on
  // batch statistics in training) sees the float output scale, and in eval
  // the pair computes the folded, quantized conv that exports carry.
  // REQUIRES: mode() != kConverted.
  void FoldBatchNorm(std::shared_ptr<torch::nn::BatchNorm2dImpl> bn);
  // The folded batch norm, or null.
  const std::shared_ptr<torch::nn::BatchNorm2dImpl>& folded_bn() const { return bn_; }

 protected:
  at::Tensor WeightToQuantize() const override;

 private:
  at::Tensor BnScale() const;

  QConv2dOptions options_;
  std::shared_ptr<torch::nn::BatchNorm2dImpl> bn_;
};

// gamma / sqrt(running_var + eps) of a batch norm.
at::Tensor BatchNormScale(const torch::nn::BatchNorm2dImpl& bn);
TORCH_MODULE(QConv2d);

class QLinearImpl : public QuantizableLayer {
 public:
  QLinearImpl(int64_t in, int64_t out, bool bias = true);
  at::Tensor forward(const at::Tensor& x);
  std::string op_type() const override { return "mul"; }
};
TORCH_MODULE(QLinear);

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_QUANT_LAYERS_H_
