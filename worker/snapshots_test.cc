// The uploader never makes training wait: with the upload stuck (a server
// that does not answer), offers return at once, only the newest waiting
// snapshot is kept, and it goes up once the stuck upload ends.
#include "worker/snapshots.h"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

namespace segqat::agent {
namespace {

class StuckServer {
 public:
  // The upload function: the first call blocks until Release().
  absl::Status Upload(const std::string& path, const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      started_.push_back(name + "@" + path);
    }
    started_cv_.notify_all();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return released_; });
    return name == "snapshots/9" ? absl::UnavailableError("server gone") : absl::OkStatus();
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  void WaitStarted(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    started_cv_.wait(lock, [&] { return started_.size() >= n; });
  }
  std::vector<std::string> started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_, started_cv_;
  bool released_ = false;
  std::vector<std::string> started_;
};

struct Done {
  std::mutex mu;
  std::vector<std::string> names;
  void Add(const std::string& name, const absl::Status& st) {
    std::lock_guard<std::mutex> lock(mu);
    names.push_back(name + (st.ok() ? "" : ":" + std::string(st.message())));
  }
};

TEST(SnapshotUploaderTest, OffersNeverWaitForAStuckUploadAndTheNewestGoesUp) {
  StuckServer server;
  Done done;
  SnapshotUploader up(
      [&](const std::string& p, const std::string& n) { return server.Upload(p, n); },
      [&](const std::string& n, const absl::Status& st) { done.Add(n, st); });
  up.Offer("/w/1", "snapshots/1");
  server.WaitStarted(1);  // snapshots/1 is in flight and stuck
  // Training goes on: each offer returns while the upload hangs (this test
  // would hang otherwise).
  for (int epoch = 2; epoch <= 5; ++epoch) {
    up.Offer("/w/" + std::to_string(epoch), "snapshots/" + std::to_string(epoch));
  }
  EXPECT_EQ(up.superseded(), 3);  // 2, 3 and 4 were replaced while they waited
  EXPECT_EQ(server.started().size(), 1u);
  server.Release();
  up.Drain();
  EXPECT_EQ(server.started(), (std::vector<std::string>{"snapshots/1@/w/1", "snapshots/5@/w/5"}));
  EXPECT_EQ(done.names, (std::vector<std::string>{"snapshots/1", "snapshots/5"}));
}

TEST(SnapshotUploaderTest, FailuresAreReportedAndStopDropsTheWaitingOne) {
  StuckServer server;
  Done done;
  {
    SnapshotUploader up(
        [&](const std::string& p, const std::string& n) { return server.Upload(p, n); },
        [&](const std::string& n, const absl::Status& st) { done.Add(n, st); });
    up.Offer("/w/9", "snapshots/9");
    server.WaitStarted(1);
    up.Offer("/w/10", "snapshots/10");
    up.Stop();                          // the lease is gone
    up.Offer("/w/11", "snapshots/11");  // ignored
    server.Release();
  }  // joins: the upload in flight ends, nothing else starts
  EXPECT_EQ(server.started(), std::vector<std::string>{"snapshots/9@/w/9"});
  EXPECT_EQ(done.names, std::vector<std::string>{"snapshots/9:server gone"});
}

TEST(SnapshotUploaderTest, DrainReturnsAtOnceWhenIdle) {
  SnapshotUploader up([](const std::string&, const std::string&) { return absl::OkStatus(); },
                      [](const std::string&, const absl::Status&) {});
  up.Drain();
  up.Offer("/w/1", "snapshots/1");
  up.Drain();
  EXPECT_EQ(up.superseded(), 0);
}

}  // namespace
}  // namespace segqat::agent
