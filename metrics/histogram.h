// Histogram: counts of observations in buckets with fixed upper bounds, plus
// their sum, rendered as Prometheus's cumulative _bucket{le}, _sum and _count.
// Lock-free and thread-safe; owned by a Family (see family.h).
#ifndef SEGQAT_METRICS_HISTOGRAM_H_
#define SEGQAT_METRICS_HISTOGRAM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"

namespace segqat::metrics {

// OK when `bounds` are finite and strictly increasing (an empty list is
// allowed: only the +Inf bucket); InvalidArgument naming the culprit
// otherwise. The +Inf bucket is implicit and must not be listed.
absl::Status CheckBucketBounds(const std::vector<double>& bounds);

// `count` bounds start, start*factor, start*factor^2, ...
// REQUIRES: start > 0, factor > 1, count >= 1 (otherwise an empty list, which
// CheckBucketBounds accepts, so a mistake shows as a single +Inf bucket).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// `count` bounds start, start+width, ... REQUIRES: width > 0, count >= 1
// (otherwise an empty list).
std::vector<double> LinearBuckets(double start, double width, int count);

class Histogram {
 public:
  // A consistent reading: cumulative[i] counts observations <= bounds[i];
  // cumulative.back() (the +Inf bucket) == count.
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries.
    double sum = 0;
    uint64_t count = 0;
  };

  // REQUIRES: CheckBucketBounds(bounds).ok() (Registry::AddHistogram checks).
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `value` in the first bucket whose bound is >= value (`le` is
  // inclusive: a value equal to a bound lands in that bound's bucket) and adds
  // it to the sum. NaN is ignored.
  void Observe(double value);

  // Count is the sum of the buckets read, so +Inf always equals _count; an
  // Observe racing with Snapshot may show in the buckets before the sum.
  Snapshot Read() const;

  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  // Per-bucket (not cumulative) counts; bounds_.size() + 1 entries.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_HISTOGRAM_H_
