#include "engine/data/cityscapes.h"

#include <array>
#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace segqat::data::cityscapes {
namespace {

TEST(CityscapesTest, LabelIdToTrainIdFollowsTheOfficialTable) {
  const std::array<uint8_t, 256> lut = LabelIdToTrainIdLut();
  EXPECT_EQ(lut[7], kRoad);
  EXPECT_EQ(lut[8], kSidewalk);
  EXPECT_EQ(lut[24], kPerson);
  EXPECT_EQ(lut[26], kCar);
  EXPECT_EQ(lut[31], kTrain);
  EXPECT_EQ(lut[33], kBicycle);
  for (int ignored : {0, 1, 6, 9, 10, 14, 15, 16, 18, 29, 30, 34, 255}) {
    EXPECT_EQ(lut[ignored], kIgnoreTrainId) << "label id " << ignored;
  }
  int mapped = 0;
  for (uint8_t v : lut) mapped += v != kIgnoreTrainId;
  EXPECT_EQ(mapped, kNumClasses);
}

TEST(CityscapesTest, TrainIdToLabelIdInvertsTheMapping) {
  const std::array<uint8_t, 256> forward = LabelIdToTrainIdLut();
  const std::array<uint8_t, 256> inverse = TrainIdToLabelIdLut();
  for (int t = 0; t < kNumClasses; ++t) EXPECT_EQ(forward[inverse[t]], t);
  EXPECT_EQ(inverse[kIgnoreTrainId], kUnlabeledLabelId);
  EXPECT_EQ(forward[inverse[kIgnoreTrainId]], kIgnoreTrainId);
}

TEST(CityscapesTest, NamesAndPaletteLineUp) {
  EXPECT_EQ(std::string(kClassNames[kTrafficLight]), "traffic light");
  EXPECT_EQ(std::string(kClassNames[kBicycle]), "bicycle");
  EXPECT_EQ(kPalette[kRoad], (std::array<uint8_t, 3>{128, 64, 128}));
  EXPECT_EQ(kPalette[kCar], (std::array<uint8_t, 3>{0, 0, 142}));
  EXPECT_EQ(kPalette[kBicycle], (std::array<uint8_t, 3>{119, 11, 32}));
}

}  // namespace
}  // namespace segqat::data::cityscapes
