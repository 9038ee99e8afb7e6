// Counter and Gauge: one series' value, updated lock-free from any thread.
// Obtained from a Family (see family.h), which owns them; Value() is what a
// scrape reads.
#ifndef SEGQAT_METRICS_SCALAR_METRICS_H_
#define SEGQAT_METRICS_SCALAR_METRICS_H_

#include <atomic>

namespace segqat::metrics {

// A value that only goes up (restarts reset it to 0). Thread-safe.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `amount`. A negative or NaN amount is ignored: counters never go down.
  void Increment(double amount = 1.0);

  // Raises the value to `total` when that is larger, for a counter that
  // mirrors a monotonic total kept elsewhere (CPU seconds from /proc). A
  // smaller or NaN `total` is ignored.
  void RaiseTo(double total);

  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down. Thread-safe.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double amount = 1.0);
  void Decrement(double amount = 1.0) { Increment(-amount); }

  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Adds `delta` to `*target` atomically (C++17 has no fetch_add for double).
void AtomicAdd(std::atomic<double>* target, double delta);

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_SCALAR_METRICS_H_
