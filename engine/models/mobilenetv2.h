// MobileNetV2 (Sandler et al. 2018) as a segmentation backbone. The module
// tree and parameter names are torchvision's mobilenet_v2 ("features.0.0.weight",
// "features.1.conv.0.0.weight", ...), so `torch.save(model.state_dict())` from
// PyTorch initializes it; the classifier is not part of the backbone.
// The output stride (8, 16 or 32) is reached by replacing the later strides
// with dilation, as DeepLab does.
#ifndef SEGQAT_ENGINE_MODELS_MOBILENETV2_H_
#define SEGQAT_ENGINE_MODELS_MOBILENETV2_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <utility>

#include "engine/export/graph.h"
#include "engine/models/layers.h"

namespace segqat::models {

struct MobileNetV2Options {
  double depth_multiplier = 1.0;
  int output_stride = 16;
  NormOptions norm;
};

struct BackboneFeatures {
  at::Tensor low_level;  // stride 4 (after features[3]), for the decoder
  at::Tensor out;        // stride output_stride, out_channels() channels
};

class MobileNetV2Impl : public torch::nn::Module {
 public:
  explicit MobileNetV2Impl(const MobileNetV2Options& options);
  BackboneFeatures forward(const at::Tensor& x);
  // forward's graph: returns the names of (low_level, out).
  std::pair<std::string, std::string> Trace(exports::GraphBuilder& g, const std::string& name,
                                            const std::string& x) const;
  int64_t out_channels() const { return out_channels_; }
  int64_t low_level_channels() const { return low_level_channels_; }

 private:
  torch::nn::Sequential features_{nullptr};
  int64_t out_channels_ = 0;
  int64_t low_level_channels_ = 0;
};
TORCH_MODULE(MobileNetV2);

// torchvision's _make_divisible: rounds channels to a multiple of 8, never
// going below 90% of v.
int64_t MakeDivisible(double v, int64_t divisor = 8);

}  // namespace segqat::models

#endif  // SEGQAT_ENGINE_MODELS_MOBILENETV2_H_
