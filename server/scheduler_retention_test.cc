// What the scheduler keeps: a running job's newest snapshots (an ended job's
// none), and ended jobs until the retention period.
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "server/scheduler_test_util.h"

namespace segqat::server {
namespace {

using testing_util::Id;
using testing_util::kLease;
using testing_util::Request;
using testing_util::SchedulerTest;

v1::Artifact Uploaded(const std::string& name) {
  v1::Artifact a;
  a.set_name(name);
  a.set_size_bytes(1);
  a.set_sha256(std::string(64, '0'));
  return a;
}

TEST_F(SchedulerTest, ARunningJobKeepsItsNewestSnapshotsAndAnEndedOneNone) {
  v1::Job job = Create(Request());
  const std::string id = Id(job);
  v1::Lease lease = Take("w1", job);
  for (int n : {2, 4, 6}) {
    const std::string prefix = "snapshots/" + std::to_string(n);
    std::filesystem::create_directories(dir_ / "artifacts" / "jobs" / id / prefix);
    std::ofstream(dir_ / "artifacts" / "jobs" / id / prefix / "model.pt") << "x";
    // The snapshot's last (here only) file completes it: the resume point
    // moves with that upload, before any report.
    ASSERT_TRUE(scheduler_->ArtifactUploaded(id, Uploaded(prefix + "/model.pt"), prefix).ok());
    EXPECT_EQ(store_->Get(id)->snapshot(), prefix);
    ASSERT_TRUE(scheduler_->Synchronize(Running("w1", lease, {})).ok());
    EXPECT_EQ(store_->Get(id)->snapshot(), prefix);  // a report without one leaves it
  }
  auto names_of = [&] {
    std::vector<std::string> names;
    auto stored = store_->Get(id);
    EXPECT_TRUE(stored.ok());
    if (stored.ok()) {
      for (const auto& a : stored->artifacts()) names.push_back(a.name());
    }
    return names;
  };
  std::vector<std::string> names = names_of();
  EXPECT_THAT(names, testing::UnorderedElementsAre("snapshots/4/model.pt", "snapshots/6/model.pt"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "artifacts" / "jobs" / id / "snapshots" / "2"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "artifacts" / "jobs" / id / "snapshots" / "6"));

  ASSERT_TRUE(scheduler_->ArtifactUploaded(id, Uploaded("final/model.pt")).ok());
  // An artifact that cannot be listed fails its upload instead of answering OK.
  EXPECT_EQ(scheduler_->ArtifactUploaded("no-such-job", Uploaded("final/model.pt")).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(
      scheduler_->Synchronize(Finished("w1", lease, v1::WorkerReport::Finished::SUCCEEDED)).ok());
  EXPECT_THAT(names_of(), testing::ElementsAre("final/model.pt"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "artifacts" / "jobs" / id / "snapshots"));
}

// A file of a snapshot that does not complete it leaves the resume point;
// a worker built before completes_snapshot reports its snapshot instead.
TEST_F(SchedulerTest, OnlyTheUploadThatCompletesASnapshotMovesTheResumePoint) {
  v1::Job job = Create(Request());
  const std::string id = Id(job);
  v1::Lease lease = Take("w1", job);
  ASSERT_TRUE(
      scheduler_->ArtifactUploaded(id, Uploaded("snapshots/1/checkpoint.yaml"), "snapshots/1")
          .ok());
  ASSERT_TRUE(scheduler_->ArtifactUploaded(id, Uploaded("snapshots/2/checkpoint.yaml")).ok());
  EXPECT_EQ(store_->Get(id)->snapshot(), "snapshots/1");
  v1::SynchronizeRequest older_worker = Running("w1", lease, {});
  older_worker.mutable_report()->mutable_running()->set_snapshot("snapshots/2");
  ASSERT_TRUE(scheduler_->Synchronize(older_worker).ok());
  EXPECT_EQ(store_->Get(id)->snapshot(), "snapshots/2");
}

TEST_F(SchedulerTest, RetentionDeletesJobsThatEndedLongEnoughAgo) {
  SchedulerOptions o;
  o.now = [this] { return now_us_.load(); };
  o.expiry_thread = false;
  o.retention = std::chrono::hours(24);
  scheduler_ = std::make_unique<Scheduler>(store_.get(), artifacts_.get(), &bus_, o);
  ASSERT_TRUE(scheduler_->Start().ok());
  v1::Job old_job = Create(Request());
  ASSERT_TRUE(scheduler_->Cancel(Id(old_job)).ok());  // ends now
  std::filesystem::create_directories(dir_ / "artifacts" / "jobs" / Id(old_job) / "final");
  Advance(std::chrono::hours(20));
  v1::Job recent = Create(Request());
  ASSERT_TRUE(scheduler_->Cancel(Id(recent)).ok());
  v1::Job queued = Create(Request());
  EXPECT_EQ(scheduler_->DeleteExpiredJobs(), 0);
  Advance(std::chrono::hours(5));  // old: 25 h ago; recent: 5 h ago
  EXPECT_EQ(scheduler_->DeleteExpiredJobs(), 1);
  EXPECT_TRUE(absl::IsNotFound(store_->Get(Id(old_job)).status()));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "artifacts" / "jobs" / Id(old_job)));
  EXPECT_TRUE(store_->Get(Id(recent)).ok());
  EXPECT_TRUE(store_->Get(Id(queued)).ok());  // never ended: never aged out
}

}  // namespace
}  // namespace segqat::server
