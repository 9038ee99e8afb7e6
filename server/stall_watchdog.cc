#include "server/stall_watchdog.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace segqat::server {

StallWatchdog::StallWatchdog(std::chrono::milliseconds timeout, std::string what)
    : timeout_(timeout), what_(std::move(what)) {
  if (timeout_.count() > 0) thread_ = std::thread([this] { Loop(); });
}

StallWatchdog::~StallWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t StallWatchdog::Register(grpc::CallbackServerContext* ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t id = next_id_++;
  entries_[id].ctx = ctx;
  return id;
}

void StallWatchdog::WriteStarted(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.writing = true;
  it->second.since = std::chrono::steady_clock::now();
}

void StallWatchdog::WriteDone(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.writing = false;
}

void StallWatchdog::Unregister(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(id);
}

int64_t StallWatchdog::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

void StallWatchdog::Loop() {
  const auto period = std::min<std::chrono::milliseconds>(
      timeout_ / 4 + std::chrono::milliseconds(1), std::chrono::seconds(1));
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, period, [this] { return stop_; })) {
    const auto now = std::chrono::steady_clock::now();
    for (auto& [id, e] : entries_) {
      if (!e.writing || e.cancelled || now - e.since < timeout_) continue;
      // Under mu_: Unregister (from OnDone) cannot free the context meanwhile.
      e.ctx->TryCancel();
      e.cancelled = true;
      ++cancelled_;
      spdlog::warn("{} from {}: the client read nothing for {} s; stream cancelled", what_,
                   e.ctx->peer(), timeout_.count() / 1000.0);
    }
  }
}

}  // namespace segqat::server
