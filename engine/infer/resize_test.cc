#include "engine/infer/resize.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <tuple>
#include <vector>

namespace segqat::infer {
namespace {

// Against LibTorch's own kernel: up by whole and fractional factors, down,
// 1-pixel inputs and outputs, channels-last inputs.
TEST(ResizeTest, ComputesWhatUpsampleBilinear2dComputes) {
  at::manual_seed(3);
  const std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> cases{
      {4, 6, 64, 96}, {32, 64, 512, 1024}, {5, 7, 13, 9},
      {13, 9, 5, 7},  {1, 1, 4, 3},        {3, 4, 1, 1}};
  for (const auto& [h, w, height, width] : cases) {
    at::Tensor x = at::randn({2, 3, h, w});
    at::Tensor want = at::upsample_bilinear2d(x, {height, width}, /*align_corners=*/false);
    for (at::Tensor in : {x, x.contiguous(at::MemoryFormat::ChannelsLast)}) {
      at::Tensor got = ResizeBilinear(in, height, width);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(got.is_contiguous());
      EXPECT_LE((got - want).abs().max().item<float>(), 1e-6f)
          << h << "x" << w << " -> " << height << "x" << width;
    }
  }
}

// Hand values: 2 -> 4 along W gives 0.75a + 0.25b steps, ends clamped.
TEST(ResizeTest, HandComputedRow) {
  at::Tensor x = at::tensor({0.f, 4.f}).view({1, 1, 1, 2});
  at::Tensor got = ResizeBilinear(x, 1, 4).flatten();
  const std::vector<float> want{0.f, 1.f, 3.f, 4.f};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_FLOAT_EQ(got[static_cast<int64_t>(i)].item<float>(), want[i]) << i;
  }
  EXPECT_THROW(ResizeBilinear(x.to(at::kDouble), 2, 2), c10::Error);
}

}  // namespace
}  // namespace segqat::infer
