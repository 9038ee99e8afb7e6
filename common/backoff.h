// The one retry policy of segqat's clients (the worker's reports, its
// uploads): wait `first`, then twice as long each time, at most `max`;
// Reset after a success.
#ifndef SEGQAT_COMMON_BACKOFF_H_
#define SEGQAT_COMMON_BACKOFF_H_

#include <algorithm>
#include <chrono>

namespace segqat {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds first, std::chrono::milliseconds max)
      : first_(first), max_(std::max(first, max)), next_(first) {}

  // The wait before the next try; doubles the one after it.
  std::chrono::milliseconds Next() {
    const auto wait = next_;
    next_ = std::min(next_ * 2, max_);
    return wait;
  }
  void Reset() { next_ = first_; }
  // A new ceiling (at least `first`), for the waits after this one.
  void set_max(std::chrono::milliseconds max) {
    max_ = std::max(first_, max);
    next_ = std::min(next_, max_);
  }

 private:
  std::chrono::milliseconds first_, max_, next_;
};

}  // namespace segqat

#endif  // SEGQAT_COMMON_BACKOFF_H_
