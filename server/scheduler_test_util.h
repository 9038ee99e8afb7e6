// The scheduler tests' fixture: a Scheduler over a JobStore on a temporary
// file and a fake clock (no expiry thread), and the worker reports they send.
#ifndef SEGQAT_SERVER_SCHEDULER_TEST_UTIL_H_
#define SEGQAT_SERVER_SCHEDULER_TEST_UTIL_H_

#include <gmock/gmock.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/artifact_store.h"
#include "server/event_bus.h"
#include "server/job_store_test_util.h"
#include "server/scheduler.h"

namespace segqat::server {
namespace testing_util {

inline constexpr auto kLease = std::chrono::milliseconds(5000);

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

}  // namespace testing_util
}  // namespace segqat::server

#endif  // SEGQAT_SERVER_SCHEDULER_TEST_UTIL_H_
