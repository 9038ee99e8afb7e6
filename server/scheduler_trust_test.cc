// Whom the scheduler believes: a lease acted on only with its secret token,
// worker ids bound to the credentials that first used them, bounded worker
// lists, and reads limited to the jobs a worker holds and their inputs.
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

TEST_F(SchedulerTest, ALeaseIsActedOnOnlyWithItsSecretToken) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  EXPECT_GE(lease.token().size(), 32u);  // at least 128 random bits, as hex
  const v1::Lease other = Take("w2", Create(Request()));
  EXPECT_NE(lease.token(), other.token());
  // What GetJob shows (job name, attempt, worker) rebuilt into a lease.
  const v1::Job shown = *store_->Get(Id(job));
  v1::Lease forged;
  forged.set_job(shown.name());
  forged.set_fencing(shown.attempt());
  for (const std::string& guess : {std::string(), other.token(), std::string("1")}) {
    forged.set_token(guess);
    EXPECT_EQ(scheduler_->CheckLease("w1", forged).code(), absl::StatusCode::kAborted);
    EXPECT_EQ(scheduler_->Synchronize(Running("w1", forged, {1})).status().code(),
              absl::StatusCode::kAborted);
    EXPECT_EQ(scheduler_->Synchronize(Finished("w1", forged, v1::WorkerReport::Finished::SUCCEEDED))
                  .status()
                  .code(),
              absl::StatusCode::kAborted);
  }
  EXPECT_EQ(State(job), v1::RUNNING);
  EXPECT_TRUE(StepsStored(job).empty());
  // The holder's own reports go through.
  EXPECT_TRUE(scheduler_->CheckLease("w1", lease).ok());
  ASSERT_TRUE(scheduler_->Synchronize(Running("w1", lease, {1})).ok());
  EXPECT_EQ(StepsStored(job), (std::vector<int64_t>{1}));
}

TEST_F(SchedulerTest, AWorkerIdStaysWithTheCredentialsThatFirstUsedIt) {
  const v1::Job job = Create(Request());
  auto first = scheduler_->Synchronize(Idle("w1"), "token-a");
  ASSERT_TRUE(first.ok() && first->has_run());
  // Another token's idle report under w1 would give up w1's job: refused.
  auto claimed = scheduler_->Synchronize(Idle("w1"), "token-b");
  EXPECT_EQ(claimed.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(State(job), v1::RUNNING);
  EXPECT_TRUE(scheduler_->Synchronize(Running("w1", first->run().lease(), {1}), "token-a").ok());
}

TEST_F(SchedulerTest, OneReportOrOneTokenCannotFloodTheWorkerList) {
  EXPECT_EQ(scheduler_->Synchronize(Idle("w1", 65)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(scheduler_->Synchronize(Idle("w1", 64)).ok());
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(scheduler_->Synchronize(Idle(absl::StrCat("ghost-", i)), "mallory").ok()) << i;
  }
  EXPECT_EQ(scheduler_->Synchronize(Idle("ghost-256"), "mallory").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(scheduler_->Synchronize(Idle("ghost-0"), "mallory").ok());  // a known id
  EXPECT_TRUE(scheduler_->Synchronize(Idle("honest-1"), "honest").ok());  // others unaffected
  EXPECT_EQ(scheduler_->Workers().size(), 258u);
}

TEST_F(SchedulerTest, AWorkerReadsOnlyTheJobsItHoldsAndTheirInputs) {
  const v1::Job input = Create(Request());
  Advance(std::chrono::milliseconds(1));
  const v1::Job unrelated = Create(Request());
  Advance(std::chrono::milliseconds(1));
  // Both run and end first (oldest first), on w0.
  for (const v1::Job& j : {input, unrelated}) {
    const v1::Lease l = Take("w0", j);
    ASSERT_TRUE(
        scheduler_->Synchronize(Finished("w0", l, v1::WorkerReport::Finished::SUCCEEDED)).ok());
  }
  v1::CreateJobRequest r;  // a config segqatd would accept: inputs come from it
  r.mutable_spec()->set_kind(v1::EVAL);
  r.mutable_spec()->add_overrides("TEST.TEST_MODEL");
  r.mutable_spec()->add_overrides(absl::StrCat(input.name(), "/final"));
  const v1::Job job = Create(r);
  EXPECT_FALSE(scheduler_->MayRead("token-a", Id(job)));  // not placed yet
  const v1::Lease lease = Take("w1", job);
  (void)lease;
  EXPECT_TRUE(scheduler_->MayRead("", Id(job)));
  EXPECT_TRUE(scheduler_->MayRead("", Id(input)));
  EXPECT_FALSE(scheduler_->MayRead("", Id(unrelated)));   // ended, and named by no held job
  EXPECT_FALSE(scheduler_->MayRead("token-b", Id(job)));  // another worker's credentials
}

}  // namespace
}  // namespace segqat::server
