// Data-parallel jobs: a gang placed once all its ranks are there, a gang
// larger than the pool that does not hold the queue, a failed rank.
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

TEST_F(SchedulerTest, ADataParallelJobWaitsForItsGangThenGivesEachARank) {
  v1::CreateJobRequest r = Request();
  r.mutable_spec()->set_workers(2);
  const v1::Job job = Create(r);
  auto with_port = [](v1::SynchronizeRequest req, int port) {
    req.set_address("10.0.0.5");
    req.set_rendezvous_port(port);
    return req;
  };
  auto first = scheduler_->Synchronize(with_port(Idle("w1"), 4001));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->has_idle());  // one worker cannot run it: nothing is reserved
  auto reserved = scheduler_->Synchronize(with_port(Idle("w2"), 4002));
  ASSERT_TRUE(reserved.ok());
  EXPECT_TRUE(reserved->has_idle());  // w2 is reserved as rank 0, waiting for a second
  EXPECT_EQ(State(job), v1::QUEUED);
  auto second = scheduler_->Synchronize(with_port(Idle("w1"), 4001));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->has_run());
  EXPECT_EQ(State(job), v1::RUNNING);
  EXPECT_EQ(second->run().lease().rank(), 1);
  EXPECT_EQ(second->run().world_size(), 2);
  EXPECT_EQ(second->run().master(), "10.0.0.5:4002");  // w2 is rank 0
  auto again = scheduler_->Synchronize(with_port(Idle("w2"), 4002));
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->has_run());
  EXPECT_EQ(again->run().lease().rank(), 0);
  const v1::Lease rank0 = again->run().lease(), rank1 = second->run().lease();
  // Only rank 0's events count.
  ASSERT_TRUE(scheduler_->Synchronize(Running("w1", rank1, {1})).ok());
  ASSERT_TRUE(scheduler_->Synchronize(Running("w2", rank0, {1, 2})).ok());
  EXPECT_EQ(StepsStored(job), (std::vector<int64_t>{1, 2}));
  // Rank 1 goes silent: the whole gang goes back to the queue, and rank 0
  // is refused at its next report.
  Advance(kLease - std::chrono::milliseconds(1));
  ASSERT_TRUE(scheduler_->Synchronize(Running("w2", rank0, {3})).ok());
  Advance(std::chrono::milliseconds(1));
  scheduler_->ExpireLeases();
  EXPECT_EQ(State(job), v1::QUEUED);
  EXPECT_EQ(scheduler_->Synchronize(Running("w2", rank0, {4})).status().code(),
            absl::StatusCode::kAborted);
}

TEST_F(SchedulerTest, AGangLargerThanThePoolDoesNotHoldTheQueue) {
  v1::CreateJobRequest big = Request(v1::TRAIN, 5);
  big.mutable_spec()->set_workers(3);
  const v1::Job gang = Create(big);
  const v1::Job small = Create(Request(v1::TRAIN, 0));
  v1::SynchronizeRequest idle = Idle("w1");
  idle.set_address("127.0.0.1");
  idle.set_rendezvous_port(5000);
  auto answer = scheduler_->Synchronize(idle);
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(answer->has_run());
  EXPECT_EQ(answer->run().lease().job(), small.name());
  EXPECT_EQ(State(gang), v1::QUEUED);
}

TEST_F(SchedulerTest, AFailedRankFailsTheDataParallelJob) {
  v1::CreateJobRequest r = Request();
  r.mutable_spec()->set_workers(2);
  const v1::Job job = Create(r);
  auto idle = [](const std::string& w) {
    v1::SynchronizeRequest req = Idle(w);
    req.set_address("127.0.0.1");
    req.set_rendezvous_port(5000);
    return req;
  };
  ASSERT_TRUE(scheduler_->Synchronize(idle("w1")).ok());
  ASSERT_TRUE(scheduler_->Synchronize(idle("w2")).ok());  // reserved as rank 0
  auto rank1 = scheduler_->Synchronize(idle("w1"));
  ASSERT_TRUE(rank1.ok() && rank1->has_run());
  ASSERT_EQ(rank1->run().lease().rank(), 1);
  ASSERT_TRUE(
      scheduler_
          ->Synchronize(Finished("w1", rank1->run().lease(), v1::WorkerReport::Finished::FAILED))
          .ok());
  EXPECT_EQ(State(job), v1::FAILED);
  EXPECT_EQ(store_->Get(Id(job))->error(), "rank 1 on w1: dataset missing");
  // w2's pending rank 0 is gone with the attempt.
  auto w2 = scheduler_->Synchronize(idle("w2"));
  ASSERT_TRUE(w2.ok());
  EXPECT_TRUE(w2->has_idle());
}

}  // namespace
}  // namespace segqat::server
