// Caps on long-lived server streams, so that clients that open streams and
// stall cannot take the server's memory nor every slot: at most `max_total`
// open at once, at most `max_per_key` per key (a connection, as gRPC names
// its peer) and at most `max_per_owner` per owner (a token's name; "" is not
// counted: no tokens, or a caller the owner cap does not apply to).
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
  static std::shared_ptr<StreamSlots> Create(int max_total, int max_per_key, std::string what,
                                             int max_per_owner = 1 << 30);

  // A held slot, given back when the last copy is destroyed; ResourceExhausted
  // naming the limit when none is free.
  absl::StatusOr<std::shared_ptr<void>> Acquire(const std::string& key,
                                                const std::string& owner = "");
  int open() const;

 private:
  StreamSlots(int max_total, int max_per_key, std::string what, int max_per_owner)
      : max_total_(max_total),
        max_per_key_(max_per_key),
        max_per_owner_(max_per_owner),
        what_(std::move(what)) {}
  void Release(const std::string& key, const std::string& owner);

  const int max_total_, max_per_key_, max_per_owner_;
  const std::string what_;
  mutable std::mutex mu_;
  int total_ = 0;
  std::map<std::string, int> per_key_;
  std::map<std::string, int> per_owner_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_STREAM_SLOTS_H_
