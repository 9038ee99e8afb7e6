#include "metrics/scalar_metrics.h"

#include <cmath>

namespace segqat::metrics {

void AtomicAdd(std::atomic<double>* target, double delta) {
  double current = target->load(std::memory_order_relaxed);
  while (!target->compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
    // `current` now holds the value another thread wrote; retry from it.
  }
}

void Counter::Increment(double amount) {
  if (!(amount >= 0)) return;  // Also rejects NaN.
  AtomicAdd(&value_, amount);
}

void Counter::RaiseTo(double total) {
  double current = value_.load(std::memory_order_relaxed);
  while (total > current &&
         !value_.compare_exchange_weak(current, total, std::memory_order_relaxed)) {
  }
}

void Gauge::Increment(double amount) { AtomicAdd(&value_, amount); }

}  // namespace segqat::metrics
