#include "engine/train/metrics.h"

#include <gtest/gtest.h>

namespace segqat {
namespace {

TEST(MetricsTest, HandMadeConfusionMatrix) {
  // labels/preds: (0,0) (0,1) (1,1) (1,1) (2,0), and one ignored pixel.
  const uint8_t labels[] = {0, 0, 1, 1, 2, 255};
  const int64_t preds[] = {0, 1, 1, 1, 0, 2};
  ConfusionMatrix cm(3);
  cm.Add(labels, preds, 6, 255);
  cm.AddImages(1);
  EXPECT_EQ(cm.at(0, 1), 1);
  EXPECT_EQ(cm.at(1, 1), 2);
  SegMetrics m = cm.Compute();
  // rows [2, 2, 1], cols [2, 3, 0]
  EXPECT_DOUBLE_EQ(m.class_iou[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.class_iou[1], 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.class_iou[2], 0.0);
  EXPECT_DOUBLE_EQ(m.miou, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.acc, 0.6);
  // PaddleSeg's category acc is tp / predicted.
  EXPECT_DOUBLE_EQ(m.class_acc[0], 0.5);
  EXPECT_DOUBLE_EQ(m.class_acc[1], 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.class_acc[2], 0.0);
  // pe = (2*2 + 2*3 + 1*0) / 25 = 0.4; kappa = (0.6 - 0.4) / 0.6
  EXPECT_DOUBLE_EQ(m.kappa, (0.6 - 0.4) / 0.6);
  EXPECT_EQ(m.pixels, 5);
  EXPECT_EQ(m.images, 1);
}

TEST(MetricsTest, ClassWithEmptyUnionCountsZero) {
  const uint8_t labels[] = {0, 0, 1, 1, 2};
  const int64_t preds[] = {0, 1, 1, 1, 0};
  ConfusionMatrix cm(4);  // class 3 never appears
  cm.Add(labels, preds, 5, 255);
  EXPECT_DOUBLE_EQ(cm.Compute().miou, (1.0 / 3 + 2.0 / 3 + 0 + 0) / 4);
}

TEST(MetricsTest, PerfectPredictionAndJson) {
  const uint8_t labels[] = {0, 1};
  const int64_t preds[] = {0, 1};
  ConfusionMatrix cm(2);
  cm.Add(labels, preds, 2, 255);
  cm.AddImages(2);
  SegMetrics m = cm.Compute();
  EXPECT_DOUBLE_EQ(m.miou, 1.0);
  EXPECT_DOUBLE_EQ(m.kappa, 1.0);
  EXPECT_EQ(m.ToJson(),
            "{\"miou\": 1.000000, \"acc\": 1.000000, \"kappa\": 1.000000, \"class_iou\": "
            "[1.000000, 1.000000], \"class_acc\": [1.000000, 1.000000], \"images\": 2}\n");
}

}  // namespace
}  // namespace segqat
