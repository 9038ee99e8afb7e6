#include "engine/quant/calibration.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include "engine/quant/quant_add.h"
#include "engine/quant/quant_aware.h"
#include "engine/quant/quant_layers.h"

namespace segqat::quant {
namespace {

TEST(CalibThresholdTest, PercentileIsTheUpperEdgeOfTheBinReachingIt) {
  // 100 values in 10 bins on [0, 10]: 50+30+10+5+4 = 99 lie below 5.
  const std::vector<double> hist = {50, 30, 10, 5, 4, 1, 0, 0, 0, 0};
  EXPECT_FLOAT_EQ(PercentileThreshold(hist, 10.f, 99.0), 5.f);
  EXPECT_FLOAT_EQ(PercentileThreshold(hist, 10.f, 50.0), 1.f);
  EXPECT_FLOAT_EQ(PercentileThreshold(hist, 10.f, 100.0), 6.f);
}

TEST(CalibThresholdTest, KlKeepsAUniformRangeWhole) {
  // Clipping a uniform distribution only adds error: no threshold below max wins.
  const std::vector<double> hist(512, 7.0);
  EXPECT_FLOAT_EQ(KlThreshold(hist, 4.f, 8), 4.f);
}

TEST(CalibThresholdTest, KlClipsALoneOutlier) {
  // A million values spread on the first eighth of the range, one at the far end:
  // 128 levels over the whole range would give the bulk 16 codes.
  std::vector<double> hist(2048, 0.0);
  for (int b = 0; b < 256; ++b) hist[b] = 4000.0 - 10.0 * b;
  hist[2047] = 1;
  const float t = KlThreshold(hist, 8.f, 8);
  EXPECT_GE(t, 0.9f);  // the bulk ends at 1.0
  EXPECT_LE(t, 1.1f);
  // Percentile reaches the outlier only when asked for every value.
  EXPECT_LE(PercentileThreshold(hist, 8.f, 99.99), 1.f);
  EXPECT_FLOAT_EQ(PercentileThreshold(hist, 8.f, 100.0), 8.f);
}

TEST(CalibMethodTest, ParsesTheThreeNamesAndNamesTheFlagOtherwise) {
  EXPECT_EQ(*ParseCalibMethod("abs_max", "--calib"), CalibMethod::kAbsMax);
  EXPECT_EQ(*ParseCalibMethod("percentile", "--calib"), CalibMethod::kPercentile);
  EXPECT_EQ(*ParseCalibMethod("kl", "--calib"), CalibMethod::kKl);
  auto bad = ParseCalibMethod("mse", "--calib");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--calib"), std::string::npos);
  EXPECT_NE(bad.status().message().find("mse"), std::string::npos);
}

float InputScale(QConv2dImpl& conv) {
  return conv.named_buffers()["input_quant.scale"].item<float>();
}

// One 1x1 conv, 2 -> 2 channels, then a quantized add of its output to itself.
struct Tiny : torch::nn::Module {
  Tiny() {
    conv = register_module("conv", QConv2d(QConv2dOptions(2, 2, 1)));
    add = register_module("add", QAdd());
    at::NoGradGuard g;
    conv->weight.copy_(at::tensor({1.f, 0.f, 0.f, 1.f}).view({2, 2, 1, 1}));
  }
  at::Tensor forward(const at::Tensor& x) { return add->forward(conv->forward(x), x); }
  QConv2d conv{nullptr};
  QAdd add{nullptr};
};

TEST(CalibrateTest, AbsMaxTakesTheLargestInputSeenAndObservesInFloat) {
  auto owner = std::make_shared<Tiny>();
  Tiny& m = *owner;
  ASSERT_TRUE(QuantAware(m, QuantConfig()).ok());
  m.eval();
  const at::Tensor a = at::full({1, 2, 3, 3}, 0.5f);
  at::Tensor b = at::full({1, 2, 3, 3}, 0.25f);
  b[0][1][2][2] = -3.f;
  int runs = 0;
  auto report = Calibrate(m, CalibOptions(), [&]() -> absl::Status {
    ++runs;
    // Observing, nothing is quantized: the identity conv and the add give 2x exactly.
    EXPECT_TRUE(at::equal(m.forward(a), 2 * a));
    m.forward(b);
    return absl::OkStatus();
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(report->passes, 1);
  ASSERT_EQ(report->ranges.size(), 4u);  // conv input, add a, b and sum
  for (const CalibratedRange& r : report->ranges) {
    const float want = r.name == "add.out_quant" ? 6.f : 3.f;
    EXPECT_FLOAT_EQ(r.scale, want) << r.name;
    EXPECT_FLOAT_EQ(r.abs_max, want) << r.name;
  }
  EXPECT_FLOAT_EQ(InputScale(*m.conv), 3.f);
  // After calibration the model quantizes again, with the scale found:
  // 0.5 on a 3.0 scale is code round(21.17) = 21.
  at::Tensor y = m.conv->forward(a);
  EXPECT_NEAR(y[0][0][0][0].item<float>(), 21 * 3.f / 127, 1e-6);
}

TEST(CalibrateTest, ObservesTheFloatModelWeightsIncluded) {
  auto owner = std::make_shared<Tiny>();
  Tiny& m = *owner;
  {
    at::NoGradGuard g;
    m.conv->weight[0][1].fill_(0.3f);  // 38.1 codes at 8 bits: quantizing changes it
  }
  ASSERT_TRUE(QuantAware(m, QuantConfig()).ok());
  m.eval();
  const at::Tensor x = at::rand({1, 2, 4, 4});
  const at::Tensor float_out = at::conv2d(x, m.conv->weight) + x;
  m.conv->set_simulated(true);
  auto report = Calibrate(m, CalibOptions(), [&]() -> absl::Status {
    EXPECT_TRUE(at::equal(m.forward(x), float_out));
    return absl::OkStatus();
  });
  ASSERT_TRUE(report.ok()) << report.status();
  // Afterwards the layers quantize again, as they did before.
  EXPECT_TRUE(m.conv->simulated());
  EXPECT_FALSE(at::equal(m.forward(x), float_out));
}

TEST(CalibrateTest, PercentileRunsTwiceAndClipsTheOutlier) {
  auto owner = std::make_shared<Tiny>();
  Tiny& m = *owner;
  ASSERT_TRUE(QuantAware(m, QuantConfig()).ok());
  m.eval();
  at::Tensor x = at::linspace(0, 1, 20000).view({1, 2, 100, 100});
  x[0][1][99][99] = 50.f;
  CalibOptions o;
  o.method = CalibMethod::kPercentile;
  o.percentile = 99.9;
  int runs = 0;
  auto report = Calibrate(m, o, [&]() -> absl::Status {
    ++runs;
    m.forward(x);
    return absl::OkStatus();
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(runs, 2);
  const float s = InputScale(*m.conv);
  // 99.9% of the values are at most 0.999; bins are 50/2048 wide.
  EXPECT_GT(s, 0.99f);
  EXPECT_LT(s, 1.03f);
}

TEST(CalibrateTest, AnEmptyCalibrationSetIsAnError) {
  auto owner = std::make_shared<Tiny>();
  Tiny& m = *owner;
  ASSERT_TRUE(QuantAware(m, QuantConfig()).ok());
  m.eval();
  auto report = Calibrate(m, CalibOptions(), [] { return absl::OkStatus(); });
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(report.status().message().find("empty calibration set"), std::string::npos);
  // The observers are gone: the model quantizes again.
  EXPECT_FALSE(
      at::equal(m.conv->forward(at::full({1, 2, 1, 1}, 0.3f)), at::full({1, 2, 1, 1}, 0.3f)));
}

TEST(CalibrateTest, AFloatModelHasNothingToCalibrate) {
  auto owner = std::make_shared<Tiny>();
  Tiny& m = *owner;
  auto report = Calibrate(m, CalibOptions(), [] { return absl::OkStatus(); });
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SimulatedTest, ALayerNotSimulatedComputesInFloatAndKeepsItsState) {
  auto owner = std::make_shared<Tiny>();
  Tiny& m = *owner;
  ASSERT_TRUE(QuantAware(m, QuantConfig()).ok());
  m.eval();
  const at::Tensor x = at::full({1, 2, 1, 1}, 0.3f);
  m.conv->set_simulated(false);
  m.add->set_simulated(false);
  EXPECT_TRUE(at::equal(m.forward(x), 2 * x));
  m.conv->set_simulated(true);
  m.add->set_simulated(true);
  EXPECT_FALSE(at::equal(m.forward(x), 2 * x));
}

TEST(SimulatedTest, AConvWithAFoldedBatchNormComputesAsTheFloatConv) {
  QConv2d conv(QConv2dOptions(3, 4, 3).padding(1));
  torch::nn::BatchNorm2d bn(4);
  {
    at::NoGradGuard g;
    bn->running_mean.copy_(at::tensor({0.1f, -0.2f, 0.3f, 0.f}));
    bn->running_var.copy_(at::tensor({0.5f, 2.f, 1.5f, 0.01f}));
    bn->weight.copy_(at::tensor({1.5f, 0.7f, -1.f, 3.f}));
  }
  conv->eval();
  bn->eval();
  const at::Tensor x = at::randn({1, 3, 8, 8});
  const at::Tensor want = bn->forward(conv->forward(x));  // float
  conv->EnableQuant(QuantConfig());
  conv->FoldBatchNorm(bn.ptr());
  EXPECT_FALSE(at::equal(bn->forward(conv->forward(x)), want));
  conv->set_simulated(false);
  EXPECT_TRUE(at::equal(bn->forward(conv->forward(x)), want));
}

}  // namespace
}  // namespace segqat::quant
