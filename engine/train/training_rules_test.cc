// The training rules pinned to what PyTorch computes (issue: train as well as
// PyTorch does; bench/train_parity.py measures the whole). Expected values
// are torch.optim.SGD's, torch.nn.BatchNorm2d's, PolynomialLR's and
// torch.nn.init's, worked out by hand.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "engine/config/config.h"
#include "engine/models/deeplab.h"
#include "engine/models/layers.h"
#include "engine/quant/quant_layers.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/sgd.h"
#include "engine/train/trainer.h"

namespace segqat {
namespace {

// torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01), p = 1, grad 0.5
// twice: g = 0.51, v = 0.51, p = 0.949; g = 0.50949, v = 0.96849, p = 0.852151.
TEST(TrainingRulesTest, SgdStepsAsTorchOptimSgd) {
  at::Tensor p = at::ones({1}, at::TensorOptions().dtype(at::kDouble)).set_requires_grad(true);
  MomentumSGD sgd({{"p", p}}, 0.9, 0.01);
  for (double want : {0.949, 0.852151}) {
    p.mutable_grad() = at::full({1}, 0.5, at::TensorOptions().dtype(at::kDouble));
    sgd.Step(0.1);
    EXPECT_NEAR(p.item<double>(), want, 1e-12);
  }
}

// poly per step, as PolynomialLR(total_iters=total, power=0.9) stepped each
// iteration: LR at step 0, LR * 0.5^0.9 halfway, LR * (1/total)^0.9 last.
TEST(TrainingRulesTest, PolyScheduleIsPerStepFromTheBaseRate) {
  auto cfg = Config::FromYamlText("SOLVER: {LR: 0.05, LR_POLICY: poly, POWER: 0.9}\n", {});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_DOUBLE_EQ(LearningRate(*cfg, 0, 20, 240), 0.05);
  EXPECT_NEAR(LearningRate(*cfg, 120, 20, 240), 0.02679433656340733, 1e-12);
  EXPECT_NEAR(LearningRate(*cfg, 239, 20, 240), 0.00036039593747455535, 1e-12);
}

// MODEL.BN_MOMENTUM is PaddleSeg's (running = m * running + (1 - m) * batch):
// 0.9 is PyTorch's momentum 0.1, which on x = [1, 3] gives running mean 0.2
// and running variance 0.9 + 0.1 * 2 = 1.1 (unbiased). The default, 0.99, is
// PaddleSeg's and PyTorch's 0.01: bench/train_parity.py shows what it costs
// on short schedules.
TEST(TrainingRulesTest, BatchNormMomentumIsPaddleSegsConvention) {
  auto cfg = Config::FromYamlText("MODEL: {BN_MOMENTUM: 0.9}\n", {});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const models::NormOptions norm = models::DeepLabOptions::FromConfig(*cfg).backbone.norm;
  EXPECT_NEAR(norm.momentum, 0.1, 1e-12);
  EXPECT_NEAR(norm.eps, 1e-5, 1e-12);
  auto bn = models::BatchNorm(1, norm);
  bn->train();
  bn->forward(at::tensor({1.0f, 3.0f}).view({2, 1, 1, 1}));
  EXPECT_NEAR(bn->running_mean.item<float>(), 0.2f, 1e-6);
  EXPECT_NEAR(bn->running_var.item<float>(), 1.1f, 1e-6);
  auto defaults = Config::FromYamlText("{}\n", {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_NEAR(models::DeepLabOptions::FromConfig(*defaults).backbone.norm.momentum, 0.01, 1e-12);
}

// PaddleSeg's default momentum on a short schedule from scratch: a warning
// naming the key and the window; none at 0.9 or on a long schedule.
TEST(TrainingRulesTest, ASlowBatchNormMomentumOnAShortScheduleIsWarned) {
  auto paddle = Config::FromYamlText("{}\n", {});
  auto torch_like = Config::FromYamlText("MODEL: {BN_MOMENTUM: 0.9}\n", {});
  ASSERT_TRUE(paddle.ok() && torch_like.ok());
  const std::string w = BatchNormMomentumWarning(*paddle, 240);
  EXPECT_NE(w.find("MODEL.BN_MOMENTUM 0.99 averages batch-norm statistics over about 100 steps"),
            std::string::npos)
      << w;
  EXPECT_NE(w.find("has 240"), std::string::npos) << w;
  EXPECT_EQ(BatchNormMomentumWarning(*paddle, 500), "");
  EXPECT_EQ(BatchNormMomentumWarning(*torch_like, 240), "");
  EXPECT_NE(BatchNormMomentumWarning(*torch_like, 40), "");
}

double Std(const at::Tensor& t) { return t.to(at::kDouble).std().item<double>(); }

// torchvision's MobileNetV2: convs kaiming_normal_(fan_out, relu), std
// sqrt(2 / (out_channels * k * k)) (groups do not enter fan_out), batch norm
// weight 1 and bias 0; segqat's classifier N(0, 0.01) with bias 0.
TEST(TrainingRulesTest, InitialisationIsTorchvisions) {
  at::manual_seed(0);
  quant::QConv2d full(quant::QConv2dOptions(64, 256, 3));
  EXPECT_NEAR(Std(full->weight) / std::sqrt(2.0 / (256 * 9)), 1.0, 0.02);
  EXPECT_NEAR(full->weight.mean().item<double>(), 0.0, 1e-3);
  quant::QConv2d depthwise(quant::QConv2dOptions(960, 960, 3).groups(960));
  EXPECT_NEAR(Std(depthwise->weight) / std::sqrt(2.0 / (960 * 9)), 1.0, 0.05);

  auto cfg = Config::FromYamlText("{}\n", {});
  ASSERT_TRUE(cfg.ok());
  models::DeepLabV3Plus model(models::DeepLabOptions::FromConfig(*cfg));
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    if (name == "last_conv.weight") {
      EXPECT_NEAR(Std(item.value()) / 0.01, 1.0, 0.05);
    } else if (name == "last_conv.bias") {
      EXPECT_EQ(item.value().abs().max().item<float>(), 0.0f);
    }
  }
  for (const auto& m : model->modules()) {
    if (const auto* bn = dynamic_cast<const torch::nn::BatchNorm2dImpl*>(m.get())) {
      EXPECT_TRUE(bn->weight.eq(1).all().item<bool>());
      EXPECT_TRUE(bn->bias.eq(0).all().item<bool>());
    }
  }
}

}  // namespace
}  // namespace segqat
