// The scheduler's lease protocol on a fake clock: placement, events, expiry,
// cancel, failures, GPU needs, a restart that keeps the leases, lost attempts.
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

TEST_F(SchedulerTest, AnIdleWorkerGetsTheNextJobWithALease) {
  const v1::Job low = Create(Request(v1::TRAIN, 0));
  const v1::Job high = Create(Request(v1::TRAIN, 5));
  const v1::Lease lease = Take("w1", high);
  EXPECT_EQ(lease.fencing(), 1);  // the first attempt
  EXPECT_EQ(State(high), v1::RUNNING);
  EXPECT_EQ(store_->Get(Id(high))->worker(), "workers/w1");
  EXPECT_EQ(State(low), v1::QUEUED);
  auto workers = scheduler_->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state(), "busy");
  EXPECT_EQ(workers[0].job(), high.name());
  EXPECT_EQ(workers[0].device(), "cpu");
}

TEST_F(SchedulerTest, EventsAreStoredOnceAndInOrderWhenAReportIsResent) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  auto first = scheduler_->Synchronize(Running("w1", lease, {1, 2}));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->acked_seq(), 2);
  EXPECT_TRUE(first->has_run());  // keep running
  // The answer was lost: the worker sends 1 and 2 again, with 3.
  auto second = scheduler_->Synchronize(Running("w1", lease, {1, 2, 3}));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->acked_seq(), 3);
  EXPECT_EQ(StepsStored(job), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(store_->Get(Id(job))->progress().step(), 3);
  // A gap is a broken worker, not something to paper over.
  EXPECT_EQ(scheduler_->Synchronize(Running("w1", lease, {5})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, ASilentWorkerLosesItsLeaseAndTheJobGoesElsewhere) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  Advance(kLease - std::chrono::milliseconds(1));
  scheduler_->ExpireLeases();
  EXPECT_EQ(State(job), v1::RUNNING);
  Advance(std::chrono::milliseconds(1));
  scheduler_->ExpireLeases();
  EXPECT_EQ(State(job), v1::QUEUED);
  EXPECT_EQ(scheduler_->Workers()[0].state(), "lost");
  // The backoff: not placed again at once.
  auto early = scheduler_->Synchronize(Idle("w2"));
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->has_idle());
  Advance(std::chrono::milliseconds(1000));
  const v1::Lease second = Take("w2", job);
  EXPECT_EQ(second.fencing(), 2);
  // The first worker comes back: its lease is stale, and it must drop the job.
  auto stale = scheduler_->Synchronize(Running("w1", lease, {1}));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(StepsStored(job).empty());
  EXPECT_EQ(scheduler_->CheckLease("w1", lease).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(scheduler_->CheckLease("w2", second).ok());
  // The second finishes it.
  ASSERT_TRUE(
      scheduler_->Synchronize(Finished("w2", second, v1::WorkerReport::Finished::SUCCEEDED)).ok());
  EXPECT_EQ(State(job), v1::SUCCEEDED);
  EXPECT_EQ(store_->Get(Id(job))->attempt(), 2);
}

TEST_F(SchedulerTest, AWorkerThatComesBackIdleGivesUpItsJob) {
  const v1::Job job = Create(Request());
  Take("w1", job);
  // w1 restarted: it reports idle under the same id and gets the job again
  // as a new attempt.
  const v1::Lease again = Take("w1", job);
  EXPECT_EQ(again.fencing(), 2);
}

TEST_F(SchedulerTest, CancelReachesTheWorkerInItsNextAnswer) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  ASSERT_EQ(scheduler_->Cancel(Id(job))->state(), v1::CANCELLING);
  auto answer = scheduler_->Synchronize(Running("w1", lease, {}));
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(answer->has_stop());
  EXPECT_TRUE(answer->stop().cancelled());
  ASSERT_TRUE(
      scheduler_->Synchronize(Finished("w1", lease, v1::WorkerReport::Finished::INTERRUPTED)).ok());
  EXPECT_EQ(State(job), v1::CANCELLED);
}

TEST_F(SchedulerTest, AFailureKeepsTheWorkersReason) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  ASSERT_TRUE(
      scheduler_->Synchronize(Finished("w1", lease, v1::WorkerReport::Finished::FAILED)).ok());
  EXPECT_EQ(State(job), v1::FAILED);
  EXPECT_EQ(store_->Get(Id(job))->error(), "dataset missing");
}

TEST_F(SchedulerTest, AGpuJobWaitsForAWorkerWithAGpu) {
  v1::CreateJobRequest r = Request();
  r.mutable_spec()->set_gpus(1);
  const v1::Job job = Create(r);
  auto cpu = scheduler_->Synchronize(Idle("cpu-worker"));
  ASSERT_TRUE(cpu.ok());
  EXPECT_TRUE(cpu->has_idle());
  auto gpu = scheduler_->Synchronize(Idle("gpu-worker", 2));
  ASSERT_TRUE(gpu.ok());
  ASSERT_TRUE(gpu->has_run());
  EXPECT_EQ(gpu->run().gpus_size(), 1);
  EXPECT_EQ(State(job), v1::RUNNING);
}

TEST_F(SchedulerTest, AnotherProtocolOrAMalformedIdIsRefused) {
  v1::SynchronizeRequest r = Idle("w1");
  r.set_protocol(v1::WORKER_PROTOCOL_UNSPECIFIED);
  EXPECT_EQ(scheduler_->Synchronize(r).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->Synchronize(Idle("../w")).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::Lease unknown;
  unknown.set_job("jobs/nope");
  unknown.set_fencing(1);
  EXPECT_EQ(scheduler_->Synchronize(Running("w1", unknown, {1})).status().code(),
            absl::StatusCode::kAborted);
}

TEST_F(SchedulerTest, LeasesSurviveARestartOfTheServer) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  ASSERT_TRUE(scheduler_->Synchronize(Running("w1", lease, {1, 2})).ok());
  MakeScheduler();  // segqatd restarted on the same store
  Advance(kLease / 2);
  // The restarted server still knows the lease's token (by its digest): the
  // attempt number alone is refused.
  v1::Lease replayed = lease;
  replayed.clear_token();
  EXPECT_EQ(scheduler_->Synchronize(Running("w1", replayed, {2, 3})).status().code(),
            absl::StatusCode::kAborted);
  // The answer to the last report was lost in the crash: the worker sends 2
  // again, with 3. Event 2 is not stored twice.
  auto report = scheduler_->Synchronize(Running("w1", lease, {2, 3}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->acked_seq(), 3);
  EXPECT_EQ(State(job), v1::RUNNING);
  EXPECT_EQ(StepsStored(job), (std::vector<int64_t>{1, 2, 3}));
  // Restarted again; this time w1 is gone and never reports.
  MakeScheduler();
  Advance(kLease);
  scheduler_->ExpireLeases();
  EXPECT_EQ(State(job), v1::QUEUED);
  EXPECT_EQ(scheduler_->Synchronize(Running("w1", lease, {4})).status().code(),
            absl::StatusCode::kAborted);
}

// The acknowledgement a restarted server gives is what its store holds,
// however many events the worker sent and however many of segqatd's own
// (artifacts, logs) followed them.
TEST_F(SchedulerTest, ARestartedServerAcknowledgesExactlyWhatItStored) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  constexpr int64_t kSent = 2500;
  for (int64_t first = 1; first <= kSent; first += 500) {
    std::vector<int64_t> seqs;
    for (int64_t s = first; s < first + 500; ++s) seqs.push_back(s);
    ASSERT_TRUE(scheduler_->Synchronize(Running("w1", lease, seqs)).ok());
  }
  for (int i = 0; i < 100; ++i) {
    v1::JobEvent own;
    own.mutable_log()->set_text("segqatd's own line");
    ASSERT_TRUE(store_->AppendEvent(Id(job), own).ok());
  }
  MakeScheduler();  // segqatd restarted on the same store
  // The answer to the last report was lost: the worker sends its last event
  // again, with the next one.
  auto report = scheduler_->Synchronize(Running("w1", lease, {kSent, kSent + 1}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->acked_seq(), kSent + 1);
  const std::vector<int64_t> steps = StepsStored(job);
  ASSERT_EQ(steps.size(), static_cast<size_t>(kSent + 1));
  EXPECT_EQ(steps.back(), kSent + 1);
}

TEST_F(SchedulerTest, AJobThatLosesItsWorkerThreeTimesEndsFailed) {
  const v1::Job job = Create(Request());
  Take("w1", job);
  for (int lost = 1; lost <= 3; ++lost) {
    MakeScheduler();  // the job took segqatd down with its worker (OOM) ...
    auto back = scheduler_->Synchronize(Idle("w1"));  // ... which comes back idle
    ASSERT_TRUE(back.ok()) << back.status();
    const v1::Job now = *store_->Get(Id(job));
    EXPECT_EQ(now.lost_attempts(), lost);
    if (lost < 3) {
      // Placed again at once, as its next attempt.
      ASSERT_TRUE(back->has_run());
      EXPECT_EQ(now.state(), v1::RUNNING);
      EXPECT_EQ(now.attempt(), lost + 1);
    } else {
      EXPECT_TRUE(back->has_idle());
      EXPECT_EQ(now.state(), v1::FAILED);
      EXPECT_THAT(now.error(), testing::HasSubstr("its worker was lost 3 times"));
      EXPECT_THAT(now.error(), testing::HasSubstr("--max-attempts"));
    }
  }
  // Stopping in order (a graceful shutdown) is no lost attempt.
  const v1::Job other = Create(Request());
  const v1::Lease lease = Take("w2", other);
  ASSERT_TRUE(
      scheduler_->Synchronize(Finished("w2", lease, v1::WorkerReport::Finished::INTERRUPTED)).ok());
  EXPECT_EQ(store_->Get(Id(other))->lost_attempts(), 0);
}

}  // namespace
}  // namespace segqat::server
