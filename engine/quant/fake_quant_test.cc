#include "engine/quant/fake_quant.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "engine/quant/activation_quantizer.h"

namespace segqat::quant {
namespace {

at::Tensor T(std::vector<float> v) { return at::tensor(v, at::kFloat); }

void ExpectValues(const at::Tensor& t, const std::vector<float>& want) {
  at::Tensor c = t.contiguous().to(at::kFloat);
  ASSERT_EQ(c.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_FLOAT_EQ(c.data_ptr<float>()[i], want[i]) << "at " << i;
  }
}

TEST(FakeQuantTest, ActivationsClampDivideByTheStepAndRoundHalvesToEven) {
  // s = 127, 8 bits: step = 1, so x / step is x exactly and ties stay ties;
  // halves go to the even neighbour, as the INT8 engine rounds.
  at::Tensor x = T({0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 0.49f, 200.0f, -300.0f});
  ExpectValues(QuantizeToInt(x, 127.0f, 8), {0, -0, 2, -2, 2, -2, 0, 127, -127});
  ExpectValues(FakeQuant(x, 127.0f, 8), {0, 0, 2, -2, 2, -2, 0, 127, -127});
  // s = 2, 8 bits: step = 2/127; 1.0 / step = 63.5 (a tie in float too) -> 64.
  const float step = 2.0f / 127;
  ExpectValues(FakeQuant(T({1.0f, -5.0f}), 2.0f, 8), {64 * step, -127 * step});
  // 7 bits: codes +-63.
  ExpectValues(QuantizeToInt(T({100.0f, -100.0f, 31.5f}), 63.0f, 7), {63, -63, 32});
}

TEST(FakeQuantTest, EveryActivationPathComputesTheEngineCodes) {
  // The generic (non-float-CPU) path agrees with the fast path, and both
  // with the engine's formula written out: rint(clamp(x / step, -127, 127)).
  at::Tensor r = at::randn({4096}) * 3;
  r.slice(0, 0, 4).copy_(T({1.0f, -1.0f, 0.0f, 10.0f}));
  const float step = 2.5f / 127;
  at::Tensor fast = QuantizeToInt(r, 2.5f, 8);
  at::Tensor generic = QuantizeToInt(r.to(at::kDouble), 2.5f, 8).to(at::kFloat);
  at::Tensor want = at::round(at::clamp(r / step, -127, 127));
  EXPECT_TRUE(at::equal(fast, want));
  EXPECT_LE((generic - want).abs().max().item<float>(), 1.0f);  // double divides differently
  EXPECT_TRUE(at::equal(FakeQuant(r, 2.5f, 8), want * step));
}

TEST(FakeQuantTest, WeightTiesRoundAwayFromZero) {
  // PaddleSlim's rule for weights: bin = 127 with s = 127 rounds x directly.
  at::Tensor w = T({0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f}).view({6, 1});
  ExpectValues(QuantizeToIntPerChannel(w, at::full({6}, 127.0f), 8), {1, -1, 2, -2, 3, -3});
}

TEST(FakeQuantTest, ZeroScaleGivesZeros) {
  ExpectValues(FakeQuant(T({0.0f, 0.0f}), 0.0f, 8), {0, 0});
}

TEST(FakeQuantTest, PerChannelScalesAreChannelAbsMax) {
  at::Tensor w = T({0.5f, -0.25f, 2.0f, 1.0f}).view({2, 1, 1, 2});
  at::Tensor s = ChannelAbsMax(w);
  ExpectValues(s, {0.5f, 2.0f});
  // -0.25/0.5*127 = -63.5 -> -64; 1/2*127 = 63.5 -> 64
  ExpectValues(QuantizeToIntPerChannel(w, s, 8).flatten(), {127, -64, 127, 64});
  ExpectValues(FakeQuantPerChannel(w, s, 8).flatten(),
               {0.5f, -64 * 0.5f / 127, 2.0f, 64 * 2.0f / 127});
}

TEST(FakeQuantTest, GradientPassesStraightThrough) {
  at::Tensor x = T({-3.0f, -0.2f, 0.7f, 5.0f}).set_requires_grad(true);
  (FakeQuant(x, 1.0f, 8) * T({1, 2, 3, 4})).sum().backward();
  // Identity STE: no mask, even where x was clipped.
  ExpectValues(x.grad(), {1, 2, 3, 4});
  at::Tensor w = T({0.5f, -0.25f, 2.0f, 1.0f}).view({2, 2}).set_requires_grad(true);
  FakeQuantPerChannel(w, ChannelAbsMax(w), 8).sum().backward();
  ExpectValues(w.grad().flatten(), {1, 1, 1, 1});
}

TEST(ActivationQuantizerTest, MovingAverageStartsAtStateAndAccumOne) {
  ActivationQuantizer q(ActivationQuantType::kMovingAverageAbsMax, 8, 0.9f, 10000);
  q->train();
  at::Tensor x1 = T({-2.0f, 1.0f});
  at::Tensor y1 = q->forward(x1);
  // state = 0.9*1 + 1 = 1.9; accum = 0.9*1 + 2 = 2.9; s = 2.9/1.9
  const float s1 = 2.9f / 1.9f;
  EXPECT_FLOAT_EQ(q->named_buffers()["state"].item<float>(), 1.9f);
  EXPECT_FLOAT_EQ(q->named_buffers()["accum"].item<float>(), 2.9f);
  EXPECT_FLOAT_EQ(q->named_buffers()["scale"].item<float>(), s1);
  // The batch is quantized with the updated scale: -2 clips to -s1.
  ExpectValues(y1, {-s1, std::round(1.0f / s1 * 127) * s1 / 127});
  q->forward(T({1.0f}));
  // state = 0.9*1.9 + 1 = 2.71; accum = 0.9*2.9 + 1 = 3.61
  EXPECT_NEAR(q->named_buffers()["scale"].item<float>(), 3.61f / 2.71f, 1e-6);
  // Eval uses the stored scale and does not update it.
  q->eval();
  const float stored = q->named_buffers()["scale"].item<float>();
  q->forward(T({100.0f}));
  EXPECT_FLOAT_EQ(q->named_buffers()["scale"].item<float>(), stored);
  ExpectValues(q->forward(T({100.0f})), {stored});
}

TEST(ActivationQuantizerTest, AbsMaxUsesEachBatchsMax) {
  ActivationQuantizer q(ActivationQuantType::kAbsMax, 8, 0.9f, 10000);
  q->eval();
  ExpectValues(q->forward(T({4.0f, -1.0f})), {4.0f, std::round(-127.0f / 4) * 4 / 127});
}

TEST(ActivationQuantizerTest, RangeAbsMaxKeepsTheWindowsMax) {
  ActivationQuantizer q(ActivationQuantType::kRangeAbsMax, 8, 0.9f, 2);
  q->train();
  auto scale = [&] { return q->named_buffers()["scale"].item<float>(); };
  q->forward(T({3.0f}));
  EXPECT_FLOAT_EQ(scale(), 3.0f);
  q->forward(T({1.0f}));
  EXPECT_FLOAT_EQ(scale(), 3.0f);  // 3 is still in the window
  q->forward(T({2.0f}));
  EXPECT_FLOAT_EQ(scale(), 2.0f);  // 3 left the window of 2
}

}  // namespace
}  // namespace segqat::quant
