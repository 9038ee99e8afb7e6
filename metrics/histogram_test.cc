#include "metrics/histogram.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::metrics {
namespace {

using ::testing::ElementsAre;

TEST(HistogramTest, ValueOnABoundCountsInThatBucket) {
  Histogram h({1, 2, 4});
  h.Observe(1);  // le="1" is inclusive.
  h.Observe(2);
  h.Observe(4);
  const Histogram::Snapshot s = h.Read();
  EXPECT_THAT(s.cumulative, ElementsAre(1, 2, 3, 3));
  EXPECT_EQ(s.count, 3u);
  EXPECT_DOUBLE_EQ(s.sum, 7);
}

TEST(HistogramTest, BelowFirstAndAboveLastBound) {
  Histogram h({1, 2, 4});
  h.Observe(-5);  // Below the first bound: first bucket.
  h.Observe(0.5);
  h.Observe(1.5);
  h.Observe(100);  // Above the last bound: only +Inf.
  h.Observe(std::numeric_limits<double>::infinity());
  h.Observe(std::nan(""));  // Ignored.
  const Histogram::Snapshot s = h.Read();
  EXPECT_THAT(s.cumulative, ElementsAre(2, 3, 3, 5));
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.cumulative.back(), s.count);
}

TEST(HistogramTest, NoBoundsMeansOnlyInf) {
  Histogram h({});
  h.Observe(3);
  h.Observe(4);
  const Histogram::Snapshot s = h.Read();
  EXPECT_THAT(s.cumulative, ElementsAre(2));
  EXPECT_DOUBLE_EQ(s.sum, 7);
}

TEST(HistogramTest, ExponentialAndLinearBuckets) {
  EXPECT_THAT(ExponentialBuckets(0.5, 2, 4), ElementsAre(0.5, 1, 2, 4));
  EXPECT_THAT(LinearBuckets(1, 0.5, 3), ElementsAre(1, 1.5, 2));
  EXPECT_TRUE(ExponentialBuckets(0, 2, 4).empty());
  EXPECT_TRUE(ExponentialBuckets(1, 1, 4).empty());
  EXPECT_TRUE(ExponentialBuckets(1, 2, 0).empty());
  EXPECT_TRUE(LinearBuckets(1, 0, 3).empty());
}

TEST(HistogramTest, BoundsMustBeFiniteAndIncreasing) {
  EXPECT_TRUE(CheckBucketBounds({}).ok());
  EXPECT_TRUE(CheckBucketBounds({0.1, 1, 10}).ok());
  EXPECT_FALSE(CheckBucketBounds({1, 1}).ok());
  EXPECT_FALSE(CheckBucketBounds({2, 1}).ok());
  EXPECT_FALSE(CheckBucketBounds({1, std::numeric_limits<double>::infinity()}).ok());
  EXPECT_FALSE(CheckBucketBounds({std::nan("")}).ok());
}

}  // namespace
}  // namespace segqat::metrics
