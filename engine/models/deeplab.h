// DeepLabv3+ (Chen et al. 2018) over MobileNetV2, as PaddleSeg builds it:
// backbone -> [ASPP encoder] -> [decoder with the stride-4 shortcut] ->
// "last_conv" (1x1, with bias, the logits) -> bilinear resize to the input.
// ASPP and decoder are switchable (the seed's QAT recipe turns both off),
// and their 3x3 convolutions may be separable.
#ifndef SEGQAT_ENGINE_MODELS_DEEPLAB_H_
#define SEGQAT_ENGINE_MODELS_DEEPLAB_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>

#include <string>

#include "engine/config/config.h"
#include "engine/models/mobilenetv2.h"

namespace segqat::models {

struct DeepLabOptions {
  int64_t num_classes = 19;
  MobileNetV2Options backbone;
  bool aspp = true;
  bool decoder = true;
  bool aspp_separable = true;
  bool decoder_separable = true;

  // From MODEL.* and DATASET.NUM_CLASSES of a validated config.
  static DeepLabOptions FromConfig(const Config& cfg);
};

// The config keys that decide the architecture; a checkpoint made under
// other values of these keys does not fit.
const std::vector<std::string>& ArchitectureKeys();

class ASPPImpl : public torch::nn::Module {
 public:
  ASPPImpl(int64_t in, int output_stride, bool separable, const NormOptions& norm);
  at::Tensor forward(const at::Tensor& x);
  std::string Trace(exports::GraphBuilder& g, const std::string& name, const std::string& x) const;
  static constexpr int64_t kChannels = 256;

 private:
  Block image_pool_{nullptr}, branch0_{nullptr}, branch1_{nullptr}, branch2_{nullptr},
      branch3_{nullptr}, project_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(ASPP);

class DecoderImpl : public torch::nn::Module {
 public:
  DecoderImpl(int64_t in, int64_t low_level_in, bool separable, const NormOptions& norm);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& low_level);
  std::string Trace(exports::GraphBuilder& g, const std::string& name, const std::string& x,
                    const std::string& low_level) const;
  static constexpr int64_t kChannels = 256;

 private:
  Block shortcut_{nullptr}, fuse_{nullptr};
};
TORCH_MODULE(Decoder);

class DeepLabV3PlusImpl : public torch::nn::Module {
 public:
  explicit DeepLabV3PlusImpl(const DeepLabOptions& options);
  // x: N x 3 x H x W normalized images. Returns N x num_classes x H x W logits.
  at::Tensor forward(const at::Tensor& x);
  // forward's graph from the (normalized) image tensor `x`; returns the logits' name.
  std::string Trace(exports::GraphBuilder& g, const std::string& x) const;
  const DeepLabOptions& options() const { return options_; }

 private:
  DeepLabOptions options_;
  MobileNetV2 backbone_{nullptr};
  ASPP aspp_{nullptr};
  Decoder decoder_{nullptr};
  quant::QConv2d last_conv_{nullptr};
};
TORCH_MODULE(DeepLabV3Plus);

}  // namespace segqat::models

#endif  // SEGQAT_ENGINE_MODELS_DEEPLAB_H_
