#include "engine/data/street_scene.h"

#include <array>
#include <cstdint>

#include "engine/data/cityscapes.h"
#include "gtest/gtest.h"

namespace segqat::data {
namespace {

std::array<int, 256> Histogram(const cv::Mat& label) {
  std::array<int, 256> h{};
  for (int y = 0; y < label.rows; ++y) {
    for (int x = 0; x < label.cols; ++x) ++h[label.at<uint8_t>(y, x)];
  }
  return h;
}

TEST(StreetSceneTest, SameSeedSameScene) {
  const StreetScene a = RenderStreetScene({256, 128}, 5, {});
  const StreetScene b = RenderStreetScene({256, 128}, 5, {});
  const StreetScene c = RenderStreetScene({256, 128}, 6, {});
  ASSERT_EQ(a.image.type(), CV_8UC3);
  ASSERT_EQ(a.label.type(), CV_8UC1);
  EXPECT_EQ(a.image.size(), cv::Size(256, 128));
  EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(a.label, b.label, cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(a.image, c.image, cv::NORM_L1), 0);
}

TEST(StreetSceneTest, LabelsAreTrainIdsOrIgnore) {
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const std::array<int, 256> h = Histogram(RenderStreetScene({256, 128}, seed, {}).label);
    for (int v = cityscapes::kNumClasses; v < 255; ++v) EXPECT_EQ(h[v], 0) << v;
    // The street basics are always there.
    for (uint8_t id : {cityscapes::kRoad, cityscapes::kSidewalk, cityscapes::kBuilding,
                       cityscapes::kSky, cityscapes::kCar, cityscapes::kPole}) {
      EXPECT_GT(h[id], 0) << cityscapes::kClassNames[id] << " seed " << seed;
    }
  }
}

TEST(StreetSceneTest, RequiredRareClassesAreVisibleAtSmallSizes) {
  for (uint8_t id :
       {cityscapes::kWall, cityscapes::kFence, cityscapes::kRider, cityscapes::kTruck,
        cityscapes::kBus, cityscapes::kTrain, cityscapes::kMotorcycle, cityscapes::kBicycle}) {
    for (uint64_t seed = 100; seed < 104; ++seed) {
      const std::array<int, 256> h = Histogram(RenderStreetScene({256, 128}, seed, {id}).label);
      EXPECT_GE(h[id], 20) << cityscapes::kClassNames[id] << " seed " << seed;
    }
  }
}

}  // namespace
}  // namespace segqat::data
