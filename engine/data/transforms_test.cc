#include "engine/data/transforms.h"

#include <set>
#include <vector>

#include "engine/data/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// An image whose pixel (x, y) is (x, y, 7) and a label equal to x % 19.
Sample Gradient(cv::Size size) {
  Sample s;
  s.image_path = "gradient.png";
  s.image.create(size, CV_8UC3);
  s.label.create(size, CV_8UC1);
  for (int y = 0; y < size.height; ++y) {
    for (int x = 0; x < size.width; ++x) {
      s.image.at<cv::Vec3b>(y, x) = cv::Vec3b(x, y, 7);
      s.label.at<uint8_t>(y, x) = x % 19;
    }
  }
  return s;
}

AugmentOptions NoScaling(cv::Size crop) {
  AugmentOptions opt;
  opt.method = AugMethod::kStepScaling;
  opt.min_scale = opt.max_scale = 1.0;
  opt.train_crop = crop;
  opt.mirror = false;
  return opt;
}

TEST(TransformsTest, TrainCropHasCropSize) {
  AugmentOptions opt;
  opt.train_crop = {33, 17};
  std::mt19937 rng = MakeRng(1);
  for (int i = 0; i < 20; ++i) {
    Sample out = TrainTransform(Gradient({64, 48}), opt, rng);
    EXPECT_EQ(out.image.size(), cv::Size(33, 17));
    EXPECT_EQ(out.label.size(), cv::Size(33, 17));
    EXPECT_EQ(out.image.type(), CV_8UC3);
    EXPECT_EQ(out.label.type(), CV_8UC1);
  }
}

TEST(TransformsTest, PaddingUsesPaddingValueAndIgnoreIndex) {
  AugmentOptions opt = NoScaling({20, 12});
  opt.ignore_index = 250;
  opt.padding_value = cv::Scalar(1, 2, 3);
  std::mt19937 rng = MakeRng(1);
  Sample out = TrainTransform(Gradient({10, 8}), opt, rng);
  // Padded to exactly the crop, so the window is the whole padded image.
  EXPECT_EQ(out.image.at<cv::Vec3b>(3, 4), cv::Vec3b(4, 3, 7));
  EXPECT_EQ(out.label.at<uint8_t>(3, 4), 4);
  EXPECT_EQ(out.image.at<cv::Vec3b>(3, 15), cv::Vec3b(1, 2, 3));  // right
  EXPECT_EQ(out.image.at<cv::Vec3b>(10, 4), cv::Vec3b(1, 2, 3));  // bottom
  EXPECT_EQ(out.label.at<uint8_t>(3, 15), 250);
  EXPECT_EQ(out.label.at<uint8_t>(10, 4), 250);
  EXPECT_EQ(out.label.at<uint8_t>(11, 19), 250);
}

TEST(TransformsTest, CropIsAWindowOfTheInput) {
  AugmentOptions opt = NoScaling({5, 4});
  std::mt19937 rng = MakeRng(3);
  std::set<std::pair<int, int>> offsets;
  for (int i = 0; i < 50; ++i) {
    Sample out = TrainTransform(Gradient({8, 6}), opt, rng);
    const cv::Vec3b corner = out.image.at<cv::Vec3b>(0, 0);
    ASSERT_LE(corner[0], 3);  // x offset in [0, 8 - 5]
    ASSERT_LE(corner[1], 2);  // y offset in [0, 6 - 4]
    EXPECT_EQ(out.image.at<cv::Vec3b>(3, 4), cv::Vec3b(corner[0] + 4, corner[1] + 3, 7));
    EXPECT_EQ(out.label.at<uint8_t>(3, 4), (corner[0] + 4) % 19);
    offsets.insert({corner[0], corner[1]});
  }
  EXPECT_EQ(offsets.size(), 12u);  // every window position occurs
}

TEST(TransformsTest, MirrorFlipsImageAndLabelTogether) {
  AugmentOptions opt = NoScaling({8, 6});
  opt.mirror = true;
  std::mt19937 rng = MakeRng(5);
  int mirrored = 0;
  for (int i = 0; i < 40; ++i) {
    Sample out = TrainTransform(Gradient({8, 6}), opt, rng);
    const bool flipped = out.image.at<cv::Vec3b>(0, 0)[0] == 7;
    mirrored += flipped;
    for (int x = 0; x < 8; ++x) {
      const int source_x = flipped ? 7 - x : x;
      ASSERT_EQ(out.image.at<cv::Vec3b>(2, x), cv::Vec3b(source_x, 2, 7));
      ASSERT_EQ(out.label.at<uint8_t>(2, x), source_x % 19);
    }
  }
  EXPECT_GT(mirrored, 5);
  EXPECT_LT(mirrored, 35);
}

TEST(TransformsTest, VerticalFlipFlipsBoth) {
  AugmentOptions opt = NoScaling({8, 6});
  opt.flip = true;
  opt.flip_ratio = 1.0;
  std::mt19937 rng = MakeRng(5);
  Sample in = Gradient({8, 6});
  in.label.at<uint8_t>(0, 0) = 9;
  Sample out = TrainTransform(in, opt, rng);
  EXPECT_EQ(out.image.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 5, 7));
  EXPECT_EQ(out.label.at<uint8_t>(5, 0), 9);
}

TEST(TransformsTest, StepScalingDrawsFromTheAllowedSet) {
  AugmentOptions opt;
  EXPECT_THAT(StepScaleFactors(opt), ElementsAre(0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0));
  // A crop of the largest scaled size (2 x 40x20): the output is the whole
  // scaled image padded with ignore_index, so its unpadded width is the
  // scaled width.
  opt.train_crop = {80, 40};
  opt.mirror = false;
  std::set<int> widths;
  std::mt19937 rng = MakeRng(11);
  for (int i = 0; i < 100; ++i) {
    const Sample out = TrainTransform(Gradient({40, 20}), opt, rng);
    const int width = cv::countNonZero(out.label.row(0) != 255);
    const int height = cv::countNonZero(out.label.col(0) != 255);
    EXPECT_EQ(width, 2 * height);
    widths.insert(width);
  }
  EXPECT_THAT(widths, ElementsAre(20, 30, 40, 50, 60, 70, 80));
}

TEST(TransformsTest, StepScalingResizesTheImage) {
  AugmentOptions opt = NoScaling({30, 15});
  opt.min_scale = opt.max_scale = 0.75;
  std::mt19937 rng = MakeRng(1);
  // 40x20 * 0.75 = 30x15 = the crop, so the output is the whole scaled image.
  Sample out = TrainTransform(Gradient({40, 20}), opt, rng);
  EXPECT_EQ(out.label.size(), cv::Size(30, 15));
  EXPECT_EQ(cv::countNonZero(out.label == 255), 0);  // nothing padded
}

TEST(TransformsTest, TrainTransformIsDeterministicForAnRngState) {
  AugmentOptions opt;
  opt.train_crop = {16, 16};
  std::mt19937 a = MakeRng(42);
  std::mt19937 b = MakeRng(42);
  const Sample in = Gradient({30, 20});
  for (int i = 0; i < 5; ++i) {
    Sample x = TrainTransform(in, opt, a);
    Sample y = TrainTransform(in, opt, b);
    EXPECT_EQ(cv::norm(x.image, y.image, cv::NORM_INF), 0);
    EXPECT_EQ(cv::norm(x.label, y.label, cv::NORM_INF), 0);
  }
}

TEST(TransformsTest, EvalPadsToEvalCrop) {
  AugmentOptions opt;
  opt.eval_crop = {12, 10};
  absl::StatusOr<Sample> out = EvalTransform(Gradient({8, 6}), opt);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->image.size(), cv::Size(12, 10));
  EXPECT_EQ(out->image.at<cv::Vec3b>(5, 7), cv::Vec3b(7, 5, 7));
  EXPECT_EQ(out->label.at<uint8_t>(5, 7), 7);
  EXPECT_EQ(out->label.at<uint8_t>(5, 8), 255);
  EXPECT_EQ(out->label.at<uint8_t>(6, 0), 255);
}

TEST(TransformsTest, EvalRangeScalingResizesTheLongSide) {
  AugmentOptions opt;
  opt.method = AugMethod::kRangeScaling;
  opt.inf_resize_value = 20;
  opt.eval_crop = {20, 20};
  absl::StatusOr<Sample> out = EvalTransform(Gradient({40, 10}), opt);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->label.at<uint8_t>(4, 19), 38 % 19);  // nearest of x = 38 or 39
  EXPECT_EQ(out->label.at<uint8_t>(5, 0), 255);       // rows 5.. are padding
}

TEST(TransformsTest, EvalImageLargerThanCropIsAnError) {
  AugmentOptions opt;
  opt.eval_crop = {8, 8};
  absl::StatusOr<Sample> out = EvalTransform(Gradient({9, 8}), opt);
  ASSERT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("gradient.png"));
  EXPECT_THAT(out.status().message(), HasSubstr("EVAL_CROP_SIZE"));
}

TEST(TransformsTest, NormalizeWritesPlanarChw) {
  cv::Mat rgb(1, 2, CV_8UC3);
  rgb.at<cv::Vec3b>(0, 0) = cv::Vec3b(255, 0, 51);
  rgb.at<cv::Vec3b>(0, 1) = cv::Vec3b(0, 255, 255);
  AugmentOptions opt;  // mean 0.5, std 0.5
  std::vector<float> out(6);
  NormalizeToChw(rgb, opt, out.data());
  // R plane, G plane, B plane; 51/255 = 0.2 -> (0.2 - 0.5) / 0.5 = -0.6.
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], -1.0f);
  EXPECT_FLOAT_EQ(out[2], -1.0f);
  EXPECT_FLOAT_EQ(out[3], 1.0f);
  EXPECT_FLOAT_EQ(out[4], -0.6f);
  EXPECT_FLOAT_EQ(out[5], 1.0f);
}

TEST(TransformsTest, InvalidOptionsAreNamed) {
  AugmentOptions opt;
  opt.min_scale = 3.0;
  EXPECT_THAT(ValidateAugmentOptions(opt).message(), HasSubstr("AUG.MIN_SCALE_FACTOR"));
  opt = AugmentOptions();
  opt.train_crop = {0, 10};
  EXPECT_THAT(ValidateAugmentOptions(opt).message(), HasSubstr("TRAIN_CROP_SIZE"));
  EXPECT_TRUE(ValidateAugmentOptions(AugmentOptions()).ok());
}

}  // namespace
}  // namespace segqat::data
