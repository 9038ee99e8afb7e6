#include "engine/models/mobilenetv2.h"

#include <torch/nn/modules/batchnorm.h>

#include <algorithm>
#include <cmath>

#include "engine/quant/quant_add.h"

namespace segqat::models {
namespace {

// torchvision's InvertedResidual: an expansion (absent when t == 1), a
// depthwise conv and a linear projection, in a Sequential named "conv".
class InvertedResidualImpl : public torch::nn::Module, public exports::Traceable {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t dilation, int64_t expand,
                       const NormOptions& norm)
      : use_residual_(stride == 1 && in == out) {
    const int64_t hidden = static_cast<int64_t>(std::lround(in * static_cast<double>(expand)));
    Block seq;
    if (expand != 1) seq->push_back(ConvBnAct(in, hidden, 1, 1, 1, 1, Activation::kReLU6, norm));
    seq->push_back(
        ConvBnAct(hidden, hidden, 3, stride, dilation, hidden, Activation::kReLU6, norm));
    seq->push_back(quant::QConv2d(quant::QConv2dOptions(hidden, out, 1)));
    seq->push_back(BatchNorm(out, norm));
    conv_ = register_module("conv", seq);
    // The residual add (quantized with SLIM.quant_add); no state while float.
    if (use_residual_) add_ = register_module("add", quant::QAdd());
  }
  at::Tensor forward(const at::Tensor& x) {
    return use_residual_ ? add_->forward(x, conv_->forward(x)) : conv_->forward(x);
  }
  std::string Trace(exports::GraphBuilder& g, const std::string& name,
                    const std::string& x) const override {
    const std::string y = g.Sequential(name + ".conv", *conv_, x);
    return use_residual_ ? g.Add(name + ".add", x, y, add_.get()) : y;
  }

 private:
  bool use_residual_;
  Block conv_{nullptr};
  quant::QAdd add_{nullptr};
};
TORCH_MODULE(InvertedResidual);

struct Stage {
  int64_t expand, channels, repeats, stride;
};
constexpr Stage kStages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
constexpr int kLowLevelIndex = 3;  // features[3] ends at stride 4

}  // namespace

int64_t MakeDivisible(double v, int64_t divisor) {
  int64_t n =
      std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

MobileNetV2Impl::MobileNetV2Impl(const MobileNetV2Options& o) {
  const double m = o.depth_multiplier;
  int64_t in = MakeDivisible(32 * m);
  torch::nn::Sequential features;
  features->push_back(ConvBnAct(3, in, 3, 2, 1, 1, Activation::kReLU6, o.norm));
  int64_t current_stride = 2, dilation = 1;
  for (const Stage& st : kStages) {
    const int64_t out = MakeDivisible(st.channels * m);
    for (int64_t i = 0; i < st.repeats; ++i) {
      int64_t stride = i == 0 ? st.stride : 1;
      if (stride > 1 && current_stride * stride > o.output_stride) {
        dilation *= stride;  // keep the resolution, widen the receptive field
        stride = 1;
      } else {
        current_stride *= stride;
      }
      features->push_back(InvertedResidual(in, out, stride, dilation, st.expand, o.norm));
      in = out;
      if (features->size() == kLowLevelIndex + 1) low_level_channels_ = out;
    }
  }
  out_channels_ = MakeDivisible(1280 * std::max(1.0, m));
  features->push_back(ConvBnAct(in, out_channels_, 1, 1, 1, 1, Activation::kReLU6, o.norm));
  features_ = register_module("features", features);
}

BackboneFeatures MobileNetV2Impl::forward(const at::Tensor& x) {
  BackboneFeatures f;
  at::Tensor h = x;
  int index = 0;
  for (auto& layer : *features_) {
    h = layer.forward(h);
    if (index++ == kLowLevelIndex) f.low_level = h;
  }
  f.out = h;
  return f;
}

std::pair<std::string, std::string> MobileNetV2Impl::Trace(exports::GraphBuilder& g,
                                                           const std::string& name,
                                                           const std::string& x) const {
  std::string h = x, low_level;
  int index = 0;
  for (const auto& item : features_->named_children()) {
    h = g.Module(name + ".features." + item.key(), *item.value(), h);
    if (index++ == kLowLevelIndex) low_level = h;
  }
  return {low_level, h};
}

}  // namespace segqat::models
