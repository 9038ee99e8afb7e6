#include "worker/quant/quant_aware.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "worker/models/deeplab.h"
#include "worker/quant/quant_layers.h"

namespace segqat::quant {
namespace {

models::DeepLabOptions SmallModel() {
  models::DeepLabOptions o;
  o.num_classes = 5;
  o.backbone.depth_multiplier = 0.35;
  o.aspp = false;
  o.decoder = false;
  return o;
}

TEST(NotQuantPatternTest, IsASubstringTest) {
  EXPECT_TRUE(MatchesNotQuantPattern("last_conv", {"last_conv"}));
  EXPECT_TRUE(MatchesNotQuantPattern("head.last_conv.0", {"last_conv"}));
  EXPECT_TRUE(MatchesNotQuantPattern("backbone.features.3.conv.1.0", {"features.3."}));
  EXPECT_FALSE(MatchesNotQuantPattern("backbone.features.13.conv.1.0", {"features.3."}));
  EXPECT_FALSE(MatchesNotQuantPattern("last_conv", {"skip_quant"}));
  EXPECT_FALSE(MatchesNotQuantPattern("last_conv", {""}));
  EXPECT_FALSE(MatchesNotQuantPattern("last_conv", {}));
}

TEST(QuantAwareTest, QuantizesEveryConvButThePattern) {
  models::DeepLabV3Plus model(SmallModel());
  QuantConfig cfg;
  cfg.not_quant_pattern = {"last_conv"};
  auto report = QuantAware(*model, cfg);
  ASSERT_TRUE(report.ok()) << report.status();
  // MobileNetV2: the stem, 2 convs in block 1, 3 in each of the other 16
  // blocks, and the final 1x1: 52 convolutions.
  EXPECT_EQ(report->quantized.size(), 52u);
  EXPECT_EQ(report->skipped, std::vector<std::string>{"last_conv"});
  for (const auto& m : model->named_modules()) {
    auto layer = std::dynamic_pointer_cast<QuantizableLayer>(m.value());
    if (!layer) continue;
    EXPECT_EQ(layer->mode(), m.key() == "last_conv" ? LayerMode::kFloat : LayerMode::kFakeQuant)
        << m.key();
  }
}

TEST(QuantAwareTest, OpTypesSelectLayers) {
  models::DeepLabV3Plus model(SmallModel());
  QuantConfig cfg;
  cfg.quantize_op_types = {"depthwise_conv2d"};
  auto report = QuantAware(*model, cfg);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->quantized.size(), 17u);  // one depthwise conv per block
  cfg.quantize_op_types = {"mul"};           // the network has no linear layer
  models::DeepLabV3Plus other(SmallModel());
  EXPECT_EQ(QuantAware(*other, cfg).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(QuantAwareTest, ConvertedModelComputesWhatQatSimulated) {
  at::manual_seed(0);
  models::DeepLabV3Plus model(SmallModel());
  QuantConfig cfg;
  cfg.not_quant_pattern = {"last_conv"};
  ASSERT_TRUE(QuantAware(*model, cfg).ok());
  at::Tensor x = at::randn({2, 3, 64, 96});
  model->train();
  for (int i = 0; i < 3; ++i) model->forward(x);  // moving-average scales settle a little
  model->eval();
  at::NoGradGuard no_grad;
  at::Tensor simulated = model->forward(x);
  ASSERT_TRUE(Convert(*model).ok());
  at::Tensor converted = model->forward(x);
  // Same integers, same scales: only float summation order differs.
  EXPECT_LT((simulated - converted).abs().max().item<float>(),
            1e-3f * simulated.abs().max().item<float>());
  EXPECT_TRUE(at::equal(simulated.argmax(1), converted.argmax(1)));
  // The converted layers hold int8 codes in [-127, 127] with per-channel scales.
  auto stem = std::dynamic_pointer_cast<QuantizableLayer>(
      model->named_modules()["backbone.features.0.0"]);
  ASSERT_TRUE(stem && stem->converted());
  const ConvertedWeights& c = *stem->converted();
  EXPECT_EQ(c.weight_int8.scalar_type(), at::kChar);
  EXPECT_EQ(c.weight_int8.abs().max().item<int>(), 127);
  EXPECT_EQ(c.weight_scale.numel(), stem->weight.size(0));
  EXPECT_GT(c.input_scale, 0);
}

TEST(QuantAwareTest, ConvertNeedsAQuantizedModel) {
  models::DeepLabV3Plus model(SmallModel());
  EXPECT_EQ(Convert(*model).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(IsQuantized(*model));
}

}  // namespace
}  // namespace segqat::quant
