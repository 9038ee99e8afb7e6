#include "engine/infer/qtensor.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace segqat::infer {
namespace {

// Hand-picked values: halves round to even, the range ends at +-127 steps
// (so -128 never appears, as in the training's quantizer).
TEST(QTensorTest, QuantizeRoundsHalvesToEvenAndClampsAt127Steps) {
  const float step = 0.5f;
  at::Tensor x = at::tensor({0.25f, 0.75f, -0.25f, -0.75f, 1.0f, 63.5f, 70.f, -63.6f, -100.f})
                     .view({1, 9, 1, 1});
  at::Tensor q = QuantizeSymmetric(x, step, 128, 127);
  ASSERT_EQ(q.scalar_type(), at::kQUInt8);
  EXPECT_EQ(q.q_zero_point(), 128);
  EXPECT_FLOAT_EQ(static_cast<float>(q.q_scale()), step);
  EXPECT_TRUE(q.is_contiguous(at::MemoryFormat::ChannelsLast));
  // x / step = 0.5, 1.5, -0.5, -1.5, 2, 127, 140, -127.2, -200
  const std::vector<int> want{0, 2, 0, -2, 2, 127, 127, -127, -127};
  at::Tensor codes = q.int_repr().to(at::kInt).flatten() - 128;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(codes[static_cast<int64_t>(i)].item<int>(), want[i]) << "value " << i;
  }
  at::Tensor back = DequantizeSymmetric(q).flatten();
  EXPECT_FLOAT_EQ(back[5].item<float>(), 63.5f);
  EXPECT_FLOAT_EQ(back[8].item<float>(), -63.5f);
}

// Codes at one step moved to another as integers: (q - zp) * 0.5 / 0.3,
// halves to even, clamped to the range of the new zero point.
TEST(QTensorTest, RequantizeMovesCodesToAnotherStep) {
  at::Tensor x = at::tensor({0.f, 1.f, -1.f, 3.f, 60.f, -60.f}).view({1, 6, 1, 1});
  at::Tensor q = QuantizeSymmetric(x, 0.5f, 128, 127);  // codes 0, 2, -2, 6, 120, -120
  at::Tensor r = RequantizeSymmetric(q, 0.3f, 128, 127);
  EXPECT_FLOAT_EQ(static_cast<float>(r.q_scale()), 0.3f);
  // 0, 1/0.3 = 3.33, -3.33, 10, 200 -> 127, -200 -> -127
  const std::vector<int> want{0, 3, -3, 10, 127, -127};
  at::Tensor codes = r.int_repr().to(at::kInt).flatten() - 128;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(codes[static_cast<int64_t>(i)].item<int>(), want[i]) << "value " << i;
  }
  // The same as quantizing the dequantized values.
  at::Tensor again = QuantizeSymmetric(DequantizeSymmetric(q), 0.3f, 128, 127);
  EXPECT_TRUE(at::equal(again.int_repr(), r.int_repr()));
  // To zero point 0 negative values become 0.
  at::Tensor nonneg = RequantizeSymmetric(q, 0.3f, 0, 127);
  EXPECT_EQ(nonneg.int_repr().to(at::kInt).flatten()[2].item<int>(), 0);
}

// The quantized add: (a * 0.5 + b * 0.25) / 0.4, halves to even, clamped.
TEST(QTensorTest, AddSumsTheDequantizedAddendsAtTheOutputStep) {
  at::Tensor a = QuantizeSymmetric(at::tensor({1.f, -2.f, 0.5f, 60.f}).view({1, 4, 1, 1}), 0.5f,
                                   128, 127);  // codes 2, -4, 1, 120
  at::Tensor b = QuantizeSymmetric(at::tensor({0.5f, 1.f, -0.25f, 20.f}).view({1, 4, 1, 1}), 0.25f,
                                   128, 127);  // codes 2, 4, -1, 80
  at::Tensor y = AddSymmetric(a, b, 0.4f, 128, 127);
  // sums 1.5, -1, 0.25, 80 -> 3.75, -2.5, 0.625, 200 -> 4, -2, 1, 127
  const std::vector<int> want{4, -2, 1, 127};
  at::Tensor codes = y.int_repr().to(at::kInt).flatten() - 128;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(codes[static_cast<int64_t>(i)].item<int>(), want[i]) << "value " << i;
  }
  EXPECT_THROW(
      AddSymmetric(a, QuantizeSymmetric(at::zeros({1, 3, 1, 1}), 0.1f, 128, 127), 0.4f, 128, 127),
      c10::Error);
}

// Non-negative tensors keep codes 0..127 at zero point 0.
TEST(QTensorTest, ZeroPointZeroHoldsCodesUpTo127) {
  at::Tensor x = at::tensor({0.f, 0.3f, 12.6f, 20.f, -1.f}).view({1, 5, 1, 1});
  at::Tensor q = QuantizeSymmetric(x, 0.1f, 0, 127);
  EXPECT_EQ(q.q_zero_point(), 0);
  at::Tensor codes = q.int_repr().to(at::kInt).flatten();
  const std::vector<int> want{0, 3, 126, 127, 0};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(codes[static_cast<int64_t>(i)].item<int>(), want[i]) << "value " << i;
  }
  EXPECT_FLOAT_EQ(DequantizeSymmetric(q).flatten()[2].item<float>(), 12.6f);
}

// A kernel's output codes outside +-127 steps are brought back into range.
TEST(QTensorTest, ClampToSymmetricRange) {
  at::Tensor bytes = at::tensor({0, 1, 128, 255}, at::TensorOptions().dtype(at::kByte));
  at::Tensor q = at::_make_per_tensor_quantized_tensor(bytes.view({1, 4, 1, 1}), 0.5, 128);
  ClampToSymmetricRange(q, 127);
  EXPECT_TRUE(at::equal(q.int_repr().flatten(), at::tensor({1, 1, 128, 255}, bytes.options())));
  at::Tensor q0 = at::_make_per_tensor_quantized_tensor(bytes.view({1, 4, 1, 1}), 0.5, 0);
  ClampToSymmetricRange(q0, 127);
  EXPECT_TRUE(at::equal(q0.int_repr().flatten(), at::tensor({0, 1, 127, 127}, bytes.options())));
}

// 7-bit activations: codes +-63, zero point 64 for signed tensors.
TEST(QTensorTest, SevenBitCodesStopAt63) {
  at::Tensor x = at::tensor({-10.f, -6.3f, 0.f, 6.3f, 10.f}).view({1, 5, 1, 1});
  at::Tensor q = QuantizeSymmetric(x, 0.1f, 64, 63);
  EXPECT_TRUE(at::equal(q.int_repr().flatten(),
                        at::tensor({1, 1, 64, 127, 127}, at::TensorOptions().dtype(at::kByte))));
  at::Tensor f = CodesOf(x, 0.1f, 63).mul(0.1f).flatten();
  EXPECT_FLOAT_EQ(f[0].item<float>(), -6.3f);
  EXPECT_FLOAT_EQ(f[4].item<float>(), 6.3f);
}

// On a large NCHW tensor (every thread's chunk) both kernels give exactly
// what LibTorch's own quantize / dequantize give inside +-127 steps.
TEST(QTensorTest, MatchesLibTorchOnALargeTensor) {
  at::manual_seed(3);
  const float step = 0.02f;
  at::Tensor x = at::randn({2, 7, 61, 67}).clamp(-127 * step, 127 * step);
  at::Tensor ours = QuantizeSymmetric(x, step, 128, 127);
  at::Tensor theirs = at::quantize_per_tensor(x, step, 128, at::kQUInt8);
  EXPECT_TRUE(at::equal(ours.int_repr(), theirs.int_repr()));
  EXPECT_TRUE(at::equal(CodesOf(x, step, 127).mul(step), at::dequantize(theirs)));
  at::Tensor f = DequantizeSymmetric(ours);
  EXPECT_TRUE(f.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(at::equal(f, at::dequantize(theirs)));
}

TEST(QTensorTest, RejectsWhatItCannotHold) {
  EXPECT_THROW(QuantizeSymmetric(at::ones({2, 2}), 0.1f, 128, 127), c10::Error);
  EXPECT_THROW(QuantizeSymmetric(at::ones({1, 1, 2, 2}), 0.f, 128, 127), c10::Error);
  EXPECT_THROW(QuantizeSymmetric(at::ones({1, 1, 2, 2}), 0.1f, 64, 127), c10::Error);
  EXPECT_THROW(QuantizeSymmetric(at::ones({1, 1, 2, 2}), 0.1f, 128, 63), c10::Error);
}

}  // namespace
}  // namespace segqat::infer
