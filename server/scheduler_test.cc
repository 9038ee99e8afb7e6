// The scheduler's lease protocol on a fake clock: placement, events, expiry,
// fencing, cancel, and a restart that keeps the leases.
#include "server/scheduler.h"

#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "server/job_store_test_util.h"

namespace segqat::server {
namespace {

using testing_util::Id;
using testing_util::Request;

constexpr auto kLease = std::chrono::milliseconds(5000);

class SchedulerTest : public testing_util::JobStoreTest {
 protected:
  void SetUp() override {
    JobStoreTest::SetUp();
    artifacts_ = std::make_unique<ArtifactStore>((dir_ / "artifacts").string());
    MakeScheduler();
  }
  void TearDown() override {
    scheduler_.reset();
    JobStoreTest::TearDown();
  }
  void MakeScheduler() {
    scheduler_.reset();
    SchedulerOptions o;
    o.lease_timeout = kLease;
    o.now = [this] { return now_us_.load(); };
    o.expiry_thread = false;
    scheduler_ = std::make_unique<Scheduler>(store_.get(), artifacts_.get(), &bus_, o);
    ASSERT_TRUE(scheduler_->Start().ok());
  }
  void Advance(std::chrono::milliseconds d) { now_us_ += d.count() * 1000; }

  static v1::SynchronizeRequest Idle(const std::string& worker, int gpus = 0) {
    v1::SynchronizeRequest r;
    r.set_protocol(v1::WORKER_PROTOCOL_V1);
    r.set_worker_id(worker);
    for (int i = 0; i < gpus; ++i) {
      auto* d = r.add_devices();
      d->set_kind("cuda");
      d->set_index(i);
    }
    if (gpus == 0) r.add_devices()->set_kind("cpu");
    r.mutable_report()->mutable_idle();
    return r;
  }
  static v1::SynchronizeRequest Running(const std::string& worker, const v1::Lease& lease,
                                        std::vector<int64_t> steps) {
    v1::SynchronizeRequest r = Idle(worker);
    auto* running = r.mutable_report()->mutable_running();
    *running->mutable_lease() = lease;
    for (int64_t s : steps) {
      auto* e = running->add_events();
      e->set_seq(s);
      e->mutable_step()->set_step(s);
      e->mutable_step()->set_loss(1.0 / static_cast<double>(s));
    }
    return r;
  }
  static v1::SynchronizeRequest Finished(const std::string& worker, const v1::Lease& lease,
                                         v1::WorkerReport::Finished::Outcome outcome) {
    v1::SynchronizeRequest r = Idle(worker);
    auto* f = r.mutable_report()->mutable_finished();
    *f->mutable_lease() = lease;
    f->set_outcome(outcome);
    f->set_error(outcome == v1::WorkerReport::Finished::FAILED ? "dataset missing" : "");
    return r;
  }
  v1::Lease Take(const std::string& worker, const v1::Job& job) {
    auto resp = scheduler_->Synchronize(Idle(worker));
    EXPECT_TRUE(resp.ok()) << resp.status();
    EXPECT_TRUE(resp.ok() && resp->has_run());
    if (!resp.ok() || !resp->has_run()) return v1::Lease();
    EXPECT_EQ(resp->run().lease().job(), job.name());
    return resp->run().lease();
  }
  v1::JobState State(const v1::Job& job) { return store_->Get(Id(job))->state(); }
  std::vector<int64_t> StepsStored(const v1::Job& job) {
    std::vector<int64_t> steps;
    for (const auto& e : Events(Id(job))) {
      if (e.has_step()) steps.push_back(e.step().step());
    }
    return steps;
  }

  EventBus bus_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<Scheduler> scheduler_;
};

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

namespace segqat::server {
namespace {

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
    ASSERT_TRUE(scheduler_->ArtifactUploaded(id, Uploaded(prefix + "/model.pt")).ok());
    v1::SynchronizeRequest r = Running("w1", lease, {});
    r.mutable_report()->mutable_running()->set_snapshot(prefix);
    ASSERT_TRUE(scheduler_->Synchronize(r).ok());
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
