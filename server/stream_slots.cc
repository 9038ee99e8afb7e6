#include "server/stream_slots.h"

#include "absl/strings/str_cat.h"

namespace segqat::server {

std::shared_ptr<StreamSlots> StreamSlots::Create(int max_total, int max_per_key, std::string what,
                                                 int max_per_owner) {
  return std::shared_ptr<StreamSlots>(
      new StreamSlots(max_total, max_per_key, std::move(what), max_per_owner));
}

absl::StatusOr<std::shared_ptr<void>> StreamSlots::Acquire(const std::string& key,
                                                           const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  if (total_ >= max_total_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what_, ": ", max_total_, " streams are open, the most allowed; retry later"));
  }
  auto mine = per_key_.find(key);
  if (mine != per_key_.end() && mine->second >= max_per_key_) {
    return absl::ResourceExhaustedError(absl::StrCat(what_, ": this connection has ", max_per_key_,
                                                     " streams open, the most allowed"));
  }
  if (!owner.empty()) {
    auto theirs = per_owner_.find(owner);
    if (theirs != per_owner_.end() && theirs->second >= max_per_owner_) {
      return absl::ResourceExhaustedError(absl::StrCat(what_, ": ", owner, " has ", max_per_owner_,
                                                       " streams open, the most allowed"));
    }
    ++per_owner_[owner];
  }
  ++per_key_[key];
  ++total_;
  std::shared_ptr<StreamSlots> self = shared_from_this();
  return std::shared_ptr<void>(nullptr, [self, key, owner](void*) { self->Release(key, owner); });
}

void StreamSlots::Release(const std::string& key, const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  --total_;
  auto it = per_key_.find(key);
  if (it != per_key_.end() && --it->second <= 0) per_key_.erase(it);
  if (!owner.empty()) {
    auto theirs = per_owner_.find(owner);
    if (theirs != per_owner_.end() && --theirs->second <= 0) per_owner_.erase(theirs);
  }
}

int StreamSlots::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

}  // namespace segqat::server
