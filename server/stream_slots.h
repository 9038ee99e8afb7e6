// Caps on long-lived server streams, so that clients that open streams and
// stall cannot take the server's memory: at most `max_total` open at once,
// and at most `max_per_key` per key (a connection, as gRPC names its peer).
#ifndef SEGQAT_SERVER_STREAM_SLOTS_H_
#define SEGQAT_SERVER_STREAM_SLOTS_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace segqat::server {

class StreamSlots : public std::enable_shared_from_this<StreamSlots> {
 public:
  // Use Create: slots outlive nothing they point to.
  static std::shared_ptr<StreamSlots> Create(int max_total, int max_per_key, std::string what);

  // A held slot, given back when the last copy is destroyed; ResourceExhausted
  // naming the limit when none is free.
  absl::StatusOr<std::shared_ptr<void>> Acquire(const std::string& key);
  int open() const;

 private:
  StreamSlots(int max_total, int max_per_key, std::string what)
      : max_total_(max_total), max_per_key_(max_per_key), what_(std::move(what)) {}
  void Release(const std::string& key);

  const int max_total_, max_per_key_;
  const std::string what_;
  mutable std::mutex mu_;
  int total_ = 0;
  std::map<std::string, int> per_key_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_STREAM_SLOTS_H_
