#include "worker/snapshot_uploader.h"

#include <utility>

namespace segqat::agent {

SnapshotUploader::SnapshotUploader(UploadFn upload, DoneFn done)
    : upload_(std::move(upload)), done_(std::move(done)), thread_([this] { Loop(); }) {}

SnapshotUploader::~SnapshotUploader() {
  Stop();
  thread_.join();
}

void SnapshotUploader::Offer(const std::string& path, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  if (waiting_) ++superseded_;
  waiting_ = std::make_pair(path, name);
  cv_.notify_all();
}

void SnapshotUploader::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopped_ || (!waiting_ && !in_flight_); });
}

void SnapshotUploader::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  waiting_.reset();
  cv_.notify_all();
}

int SnapshotUploader::superseded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return superseded_;
}

void SnapshotUploader::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopped_ || waiting_.has_value(); });
    if (stopped_) return;
    auto [path, name] = *std::move(waiting_);
    waiting_.reset();
    in_flight_ = true;
    lock.unlock();
    const absl::Status st = upload_(path, name);
    done_(name, st);
    lock.lock();
    in_flight_ = false;
    cv_.notify_all();
  }
}

}  // namespace segqat::agent
