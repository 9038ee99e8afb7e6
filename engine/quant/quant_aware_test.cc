#include "engine/quant/quant_aware.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "engine/models/deeplab.h"
#include "engine/quant/fake_quant.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_layers.h"

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

// SLIM.quant_add: the 10 residual adds of MobileNetV2 get quantizers; the
// pattern keeps an add float like a layer; without the key they stay float
// and hold no state, so float checkpoints are unchanged.
TEST(QuantAwareTest, ResidualAddsAreQuantizedUnlessTurnedOff) {
  models::DeepLabV3Plus model(SmallModel());
  QuantConfig cfg;
  cfg.not_quant_pattern = {"features.3.add"};
  auto report = QuantAware(*model, cfg);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->adds.size(), 9u);
  int fake_quant = 0, total = 0;
  for (const auto& m : model->named_modules()) {
    auto add = std::dynamic_pointer_cast<QAddImpl>(m.value());
    if (!add) continue;
    ++total;
    fake_quant += add->mode() == LayerMode::kFakeQuant;
    if (m.key() == "backbone.features.3.add") {
      EXPECT_EQ(add->mode(), LayerMode::kFloat);
    }
  }
  EXPECT_EQ(total, 10);
  EXPECT_EQ(fake_quant, 9);
  EXPECT_TRUE(model->named_buffers().contains("backbone.features.5.add.out_quant.scale"));

  models::DeepLabV3Plus off(SmallModel());
  const size_t float_buffers = off->named_buffers().size();
  cfg.quant_add = false;
  ASSERT_TRUE(QuantAware(*off, cfg).ok());
  for (const auto& b : off->named_buffers()) {
    EXPECT_EQ(b.key().find(".add."), std::string::npos) << b.key();
  }
  EXPECT_GT(off->named_buffers().size(), float_buffers);  // the convs' quantizers only
}

// y = Q_out(Q_a(a) + Q_b(b)) by hand, in training (scales from the batch,
// moving average from 1/1) and after Convert (the stored scales).
TEST(QuantAddTest, FakeQuantizesBothAddendsAndTheSum) {
  QAdd add;
  at::Tensor a = at::tensor({0.5f, -1.0f, 0.26f, 2.0f}).view({1, 4, 1, 1});
  at::Tensor b = at::tensor({0.1f, 0.3f, -0.7f, -0.2f}).view({1, 4, 1, 1});
  EXPECT_TRUE(at::equal(add->forward(a, b), a + b));  // float
  QuantConfig cfg;
  add->EnableQuant(cfg);
  add->train();
  // moving_average_abs_max, rate 0.9, state and accum from 1: after one
  // batch s = (0.9 + max|x|) / 1.9.
  auto scale = [](float m) { return (0.9f + m) / 1.9f; };
  const float sa = scale(2.0f), sb = scale(0.7f);
  at::Tensor qa = FakeQuant(a, sa, 8), qb = FakeQuant(b, sb, 8);
  at::Tensor sum = qa + qb;
  const float so = scale(sum.abs().max().item<float>());
  at::Tensor want = FakeQuant(sum, so, 8);
  at::Tensor got = add->forward(a, b);
  EXPECT_TRUE(at::allclose(got, want, 0, 1e-7)) << got << want;
  // a's 2.0 is above s_a = 1.526 and clips; the sum sits on the grid of s_out.
  EXPECT_FLOAT_EQ(FakeQuant(a, sa, 8)[0][3][0][0].item<float>(), sa);
  add->eval();
  add->Convert();
  ASSERT_TRUE(add->converted().has_value());
  EXPECT_FLOAT_EQ(add->converted()->a_scale, sa);
  EXPECT_FLOAT_EQ(add->converted()->b_scale, sb);
  EXPECT_FLOAT_EQ(add->converted()->out_scale, so);
  EXPECT_TRUE(at::allclose(add->forward(a, b), want, 0, 1e-7));
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
  auto stem =
      std::dynamic_pointer_cast<QuantizableLayer>(model->named_modules()["backbone.features.0.0"]);
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
