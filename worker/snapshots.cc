#include "worker/snapshots.h"

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"

namespace segqat::agent {
namespace fs = std::filesystem;

bool IsEpochSnapshot(const std::string& name) {
  return !name.empty() && name.find_first_not_of("0123456789") == std::string::npos;
}

void KeepNewestLocalSnapshots(const std::string& work_dir, size_t keep) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(work_dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t n = 0;
    if (e.is_directory() && IsEpochSnapshot(name) && absl::SimpleAtoi(name, &n)) {
      found.emplace_back(n, e.path());
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& x, const auto& y) { return x.first > y.first; });
  for (size_t i = keep; i < found.size(); ++i) fs::remove_all(found[i].second, ec);
}

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
