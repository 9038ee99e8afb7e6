#include "server/event_bus.h"

#include <vector>

namespace segqat::server {

int EventBus::Subscribe(const std::string& job_id, Callback callback) {
  std::lock_guard<std::mutex> lock(mu_);
  const int token = next_token_++;
  subscribers_[job_id][token] = std::move(callback);
  return token;
}

void EventBus::Unsubscribe(const std::string& job_id, int token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = subscribers_.find(job_id);
  if (it == subscribers_.end()) return;
  it->second.erase(token);
  if (it->second.empty()) subscribers_.erase(it);
}

void EventBus::Notify(const std::string& job_id) {
  std::vector<Callback> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = subscribers_.find(job_id);
    if (it == subscribers_.end()) return;
    for (const auto& [token, cb] : it->second) callbacks.push_back(cb);
  }
  for (const auto& cb : callbacks) cb();
}

}  // namespace segqat::server
