#include "engine/models/deeplab.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/pooling.h>

#include "engine/export/deployed_ops.h"

namespace segqat::models {
namespace {

// In eval, the engine's resize (the deployed graph's node, computed the same
// way: exports::ResizeLike); in training upsample_bilinear2d, for autograd.
at::Tensor ResizeTo(const at::Tensor& x, int64_t h, int64_t w, bool training) {
  if (x.size(2) == h && x.size(3) == w) return x;
  if (!training) return exports::ResizeLike(x, h, w);
  return at::upsample_bilinear2d(x, {h, w}, /*align_corners=*/false);
}

}  // namespace

DeepLabOptions DeepLabOptions::FromConfig(const Config& cfg) {
  DeepLabOptions o;
  o.num_classes = cfg.Int("DATASET.NUM_CLASSES");
  o.backbone.depth_multiplier = cfg.Float("MODEL.DEEPLAB.DEPTH_MULTIPLIER");
  o.backbone.output_stride = static_cast<int>(cfg.Int("MODEL.DEEPLAB.OUTPUT_STRIDE"));
  o.backbone.norm.eps = cfg.Float("MODEL.DEFAULT_EPSILON");
  o.backbone.norm.momentum = 1.0 - cfg.Float("MODEL.BN_MOMENTUM");
  o.aspp = cfg.Bool("MODEL.DEEPLAB.ENCODER_WITH_ASPP");
  o.decoder = cfg.Bool("MODEL.DEEPLAB.ENABLE_DECODER");
  o.aspp_separable = cfg.Bool("MODEL.DEEPLAB.ASPP_WITH_SEP_CONV");
  o.decoder_separable = cfg.Bool("MODEL.DEEPLAB.DECODER_USE_SEP_CONV");
  return o;
}

const std::vector<std::string>& ArchitectureKeys() {
  static const auto* keys = new std::vector<std::string>{
      "MODEL.MODEL_NAME",
      "MODEL.DEEPLAB.BACKBONE",
      "DATASET.NUM_CLASSES",
      "MODEL.DEEPLAB.DEPTH_MULTIPLIER",
      "MODEL.DEEPLAB.OUTPUT_STRIDE",
      "MODEL.DEEPLAB.ENCODER_WITH_ASPP",
      "MODEL.DEEPLAB.ENABLE_DECODER",
      "MODEL.DEEPLAB.ASPP_WITH_SEP_CONV",
      "MODEL.DEEPLAB.DECODER_USE_SEP_CONV",
  };
  return *keys;
}

ASPPImpl::ASPPImpl(int64_t in, int output_stride, bool separable, const NormOptions& norm) {
  const int64_t c = kChannels;
  const int64_t rate = output_stride == 8 ? 12 : output_stride == 16 ? 6 : 3;
  image_pool_ =
      register_module("image_pool", ConvBnAct(in, c, 1, 1, 1, 1, Activation::kReLU, norm));
  branch0_ = register_module("branch0", ConvBnAct(in, c, 1, 1, 1, 1, Activation::kReLU, norm));
  branch1_ = register_module("branch1", Conv3x3(in, c, rate, separable, norm));
  branch2_ = register_module("branch2", Conv3x3(in, c, rate * 2, separable, norm));
  branch3_ = register_module("branch3", Conv3x3(in, c, rate * 3, separable, norm));
  project_ = register_module("project", ConvBnAct(5 * c, c, 1, 1, 1, 1, Activation::kReLU, norm));
  dropout_ = register_module("dropout", torch::nn::Dropout(0.1));
}

at::Tensor ASPPImpl::forward(const at::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  // In eval the mean the deployed graph computes (exports::MeanHW).
  at::Tensor mean = is_training() ? x.mean({2, 3}, /*keepdim=*/true) : exports::MeanHW(x);
  at::Tensor pooled = image_pool_->forward(mean);
  at::Tensor cat = at::cat({pooled.expand({-1, -1, h, w}), branch0_->forward(x),
                            branch1_->forward(x), branch2_->forward(x), branch3_->forward(x)},
                           1);
  return dropout_->forward(project_->forward(cat));
}

std::string ASPPImpl::Trace(exports::GraphBuilder& g, const std::string& name,
                            const std::string& x) const {
  const std::string pooled =
      g.Module(name + ".image_pool", *image_pool_, g.Mean(name + ".mean", x));
  const std::string cat = g.Concat(
      name + ".cat",
      {g.ExpandLike(name + ".expand", pooled, x), g.Module(name + ".branch0", *branch0_, x),
       g.Module(name + ".branch1", *branch1_, x), g.Module(name + ".branch2", *branch2_, x),
       g.Module(name + ".branch3", *branch3_, x)});
  return g.Module(name + ".project", *project_, cat);
}

DecoderImpl::DecoderImpl(int64_t in, int64_t low_level_in, bool separable,
                         const NormOptions& norm) {
  shortcut_ =
      register_module("shortcut", ConvBnAct(low_level_in, 48, 1, 1, 1, 1, Activation::kReLU, norm));
  Block fuse;
  fuse->push_back(Conv3x3(in + 48, kChannels, 1, separable, norm));
  fuse->push_back(Conv3x3(kChannels, kChannels, 1, separable, norm));
  fuse_ = register_module("fuse", fuse);
}

at::Tensor DecoderImpl::forward(const at::Tensor& x, const at::Tensor& low_level) {
  at::Tensor up = ResizeTo(x, low_level.size(2), low_level.size(3), is_training());
  return fuse_->forward(at::cat({up, shortcut_->forward(low_level)}, 1));
}

std::string DecoderImpl::Trace(exports::GraphBuilder& g, const std::string& name,
                               const std::string& x, const std::string& low_level) const {
  const std::string up = g.ResizeLike(name + ".resize", x, low_level);
  const std::string shortcut = g.Module(name + ".shortcut", *shortcut_, low_level);
  return g.Module(name + ".fuse", *fuse_, g.Concat(name + ".cat", {up, shortcut}));
}

DeepLabV3PlusImpl::DeepLabV3PlusImpl(const DeepLabOptions& o) : options_(o) {
  backbone_ = register_module("backbone", MobileNetV2(o.backbone));
  int64_t channels = backbone_->out_channels();
  if (o.aspp) {
    aspp_ = register_module(
        "aspp", ASPP(channels, o.backbone.output_stride, o.aspp_separable, o.backbone.norm));
    channels = ASPPImpl::kChannels;
  }
  if (o.decoder) {
    decoder_ = register_module("decoder", Decoder(channels, backbone_->low_level_channels(),
                                                  o.decoder_separable, o.backbone.norm));
    channels = DecoderImpl::kChannels;
  }
  last_conv_ = register_module(
      "last_conv", quant::QConv2d(quant::QConv2dOptions(channels, o.num_classes, 1).bias(true)));
  // Small logits at the start, as PaddleSeg initialises its classifier.
  torch::nn::init::normal_(last_conv_->weight, 0.0, 0.01);
}

at::Tensor DeepLabV3PlusImpl::forward(const at::Tensor& x) {
  BackboneFeatures f = backbone_->forward(x);
  at::Tensor h = f.out;
  if (aspp_) h = aspp_->forward(h);
  if (decoder_) h = decoder_->forward(h, f.low_level);
  return ResizeTo(ConvForward(*last_conv_, h), x.size(2), x.size(3), is_training());
}

std::string DeepLabV3PlusImpl::Trace(exports::GraphBuilder& g, const std::string& x) const {
  auto [low_level, h] = backbone_->Trace(g, "backbone", x);
  if (aspp_) h = aspp_->Trace(g, "aspp", h);
  if (decoder_) h = decoder_->Trace(g, "decoder", h, low_level);
  return g.ResizeLike("resize", g.Module("last_conv", *last_conv_, h), x);
}

}  // namespace segqat::models
