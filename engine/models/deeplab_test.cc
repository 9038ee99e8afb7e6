#include "engine/models/deeplab.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace segqat::models {
namespace {

TEST(MobileNetV2Test, ParameterNamesAndCountMatchTorchvision) {
  MobileNetV2 net(MobileNetV2Options{});
  auto params = net->named_parameters();
  EXPECT_EQ(params["features.0.0.weight"].sizes(), (std::vector<int64_t>{32, 3, 3, 3}));
  EXPECT_EQ(params["features.1.conv.0.0.weight"].sizes(), (std::vector<int64_t>{32, 1, 3, 3}));
  EXPECT_EQ(params["features.1.conv.1.weight"].sizes(), (std::vector<int64_t>{16, 32, 1, 1}));
  EXPECT_EQ(params["features.2.conv.0.0.weight"].sizes(), (std::vector<int64_t>{96, 16, 1, 1}));
  EXPECT_EQ(params["features.17.conv.2.weight"].sizes(), (std::vector<int64_t>{320, 960, 1, 1}));
  EXPECT_EQ(params["features.18.0.weight"].sizes(), (std::vector<int64_t>{1280, 320, 1, 1}));
  EXPECT_TRUE(net->named_buffers().contains("features.18.1.running_var"));
  int64_t count = 0;
  for (const auto& p : params) count += p.value().numel();
  // torchvision.models.mobilenet_v2().features has 2,223,872 parameters.
  EXPECT_EQ(count, 2223872);
}

TEST(MobileNetV2Test, OutputStrideByDilation) {
  for (int os : {8, 16, 32}) {
    MobileNetV2Options o;
    o.depth_multiplier = 0.5;
    o.output_stride = os;
    MobileNetV2 net(o);
    net->eval();
    at::NoGradGuard no_grad;
    BackboneFeatures f = net->forward(at::randn({1, 3, 128, 256}));
    EXPECT_EQ(f.out.size(2), 128 / os) << os;
    EXPECT_EQ(f.out.size(3), 256 / os) << os;
    EXPECT_EQ(f.low_level.size(2), 32) << os;
    EXPECT_EQ(f.out.size(1), net->out_channels());
  }
}

TEST(DeepLabTest, LogitsAtInputSizeForEveryHeadVariant) {
  for (bool aspp : {false, true}) {
    for (bool decoder : {false, true}) {
      DeepLabOptions o;
      o.num_classes = 7;
      o.backbone.depth_multiplier = 0.35;
      o.aspp = aspp;
      o.decoder = decoder;
      DeepLabV3Plus model(o);
      model->eval();
      at::NoGradGuard no_grad;
      at::Tensor y = model->forward(at::randn({2, 3, 64, 96}));
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7, 64, 96})) << aspp << decoder;
      EXPECT_TRUE(model->named_parameters().contains("last_conv.bias"));
      EXPECT_EQ(model->named_parameters().contains("aspp.project.0.weight"), aspp);
      EXPECT_EQ(model->named_parameters().contains("decoder.shortcut.0.weight"), decoder);
    }
  }
}

}  // namespace
}  // namespace segqat::models
