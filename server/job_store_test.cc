#include "server/job_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "server/job_store_test_util.h"

namespace segqat::server {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace testing_util;  // NOLINT
TEST_F(JobStoreTest, CreateThenGet) {
  v1::CreateJobRequest request = Request(v1::EVAL, 5);
  (*request.mutable_labels())["team"] = "vision";
  v1::Job job = Create(request);
  EXPECT_THAT(job.name(), ::testing::MatchesRegex("jobs/[0-9a-f]{12}"));
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(job.kind(), v1::EVAL);
  EXPECT_EQ(job.priority(), 5);
  EXPECT_EQ(job.attempt(), 0);
  EXPECT_EQ(job.progress().best_miou(), -1);
  EXPECT_EQ(job.create_time().seconds(), kStartUs / 1000000);
  EXPECT_FALSE(job.has_start_time());
  EXPECT_EQ(job.labels().at("team"), "vision");
  EXPECT_EQ(job.spec().overrides_size(), 2);

  auto got = store_->Get(Id(job));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->SerializeAsString(), job.SerializeAsString());

  std::vector<v1::JobEvent> events = Events(Id(job));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seq(), 1);
  EXPECT_EQ(events[0].state().state(), v1::QUEUED);
  EXPECT_EQ(events[0].state().reason(), "created");
  EXPECT_EQ(events[0].time().seconds(), kStartUs / 1000000);

  EXPECT_NE(Id(Create(Request())), Id(job));
}

TEST_F(JobStoreTest, UnknownIdIsNotFound) {
  EXPECT_EQ(store_->Get("000000000000").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Transition("nope", v1::RUNNING, "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->AppendEvent("nope", v1::JobEvent()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadEvents("nope", 0, 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SetProgress("nope", v1::Progress()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->AddArtifact("nope", v1::Artifact()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SetWorker("nope", "w").code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, RequestIdDeduplicates) {
  v1::CreateJobRequest request = Request();
  request.set_request_id("3f2a7c1e-0000-4000-8000-000000000001");
  v1::Job first = Create(request);
  now_us_ += 1000;
  auto again = store_->Create(request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->second);
  EXPECT_EQ(again->first.name(), first.name());
  EXPECT_EQ(again->first.request_id(), request.request_id());

  v1::ListJobsRequest list;
  auto page = store_->List(list, 50);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->jobs_size(), 1);
  EXPECT_EQ(Events(Id(first)).size(), 1u);

  // Requests without an id are never merged.
  Create(Request());
  Create(Request());
  EXPECT_EQ(store_->List(list, 50)->jobs_size(), 3);
}

TEST_F(JobStoreTest, TransitionsRecordTimesAttemptsAndEvents) {
  std::string id = Id(Create(Request()));
  now_us_ += 1'000'000;
  auto running = store_->Transition(id, v1::RUNNING, "assigned");
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state(), v1::RUNNING);
  EXPECT_EQ(running->attempt(), 1);
  EXPECT_EQ(running->start_time().seconds(), kStartUs / 1000000 + 1);
  EXPECT_FALSE(running->has_end_time());

  now_us_ += 1'000'000;
  ASSERT_TRUE(store_->Transition(id, v1::QUEUED, "worker lost").ok());
  auto again = store_->Transition(id, v1::RUNNING, "assigned");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->attempt(), 2);
  EXPECT_EQ(again->start_time().seconds(), kStartUs / 1000000 + 2);

  now_us_ += 1'000'000;
  auto failed = store_->Transition(id, v1::FAILED, "loss is NaN");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->error(), "loss is NaN");
  EXPECT_EQ(failed->end_time().seconds(), kStartUs / 1000000 + 3);
  EXPECT_EQ(failed->attempt(), 2);

  auto stored = store_->Get(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->SerializeAsString(), failed->SerializeAsString());

  std::vector<v1::JobEvent> events = Events(id);
  EXPECT_THAT(Seqs(events), ElementsAre(1, 2, 3, 4, 5));
  std::vector<v1::JobState> states;
  for (const auto& e : events) {
    ASSERT_EQ(e.event_case(), v1::JobEvent::kState);
    states.push_back(e.state().state());
  }
  EXPECT_THAT(states, ElementsAre(v1::QUEUED, v1::RUNNING, v1::QUEUED, v1::RUNNING, v1::FAILED));
  EXPECT_EQ(events[2].state().reason(), "worker lost");
}

TEST_F(JobStoreTest, IllegalTransitionIsFailedPreconditionAndChangesNothing) {
  std::string id = Id(Create(Request()));
  auto skip = store_->Transition(id, v1::SUCCEEDED, "");
  EXPECT_EQ(skip.status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Transition(id, v1::RUNNING, "").ok());
  ASSERT_TRUE(store_->Transition(id, v1::SUCCEEDED, "").ok());

  auto rerun = store_->Transition(id, v1::RUNNING, "");
  EXPECT_EQ(rerun.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rerun.status().message(), "job " + id + " is SUCCEEDED; cannot move to RUNNING");
  EXPECT_EQ(store_->Transition(id, v1::SUCCEEDED, "").status().code(),
            absl::StatusCode::kFailedPrecondition);

  EXPECT_EQ(store_->Get(id)->state(), v1::SUCCEEDED);
  EXPECT_EQ(store_->Get(id)->error(), "");
  EXPECT_THAT(Seqs(Events(id)), ElementsAre(1, 2, 3));
}

TEST_F(JobStoreTest, CancelFromQueuedIsFinal) {
  std::string id = Id(Create(Request()));
  auto cancelled = store_->Transition(id, v1::CANCELLED, "by user");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_TRUE(cancelled->has_end_time());
  EXPECT_EQ(cancelled->attempt(), 0);
  EXPECT_EQ(cancelled->error(), "");
}

TEST_F(JobStoreTest, AppendAndReadEvents) {
  std::string id = Id(Create(Request()));
  v1::JobEvent log;
  log.set_seq(99);  // ignored: the store numbers events
  log.mutable_log()->set_level("INFO");
  log.mutable_log()->set_text("epoch 1");
  now_us_ += 1'500'000;
  auto stored = store_->AppendEvent(id, log);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->seq(), 2);
  EXPECT_EQ(stored->time().seconds(), kStartUs / 1000000 + 1);
  EXPECT_EQ(stored->time().nanos(), 500'000'000);
  EXPECT_EQ(stored->log().text(), "epoch 1");

  for (int i = 0; i < 5; ++i) {
    v1::JobEvent step;
    step.mutable_step()->set_step(i);
    ASSERT_TRUE(store_->AppendEvent(id, step).ok());
  }
  auto tail = store_->ReadEvents(id, 3, 2);
  ASSERT_TRUE(tail.ok());
  EXPECT_THAT(Seqs(*tail), ElementsAre(4, 5));
  EXPECT_EQ((*tail)[0].step().step(), 1);
  EXPECT_THAT(Seqs(*store_->ReadEvents(id, 7, 10)), ElementsAre());
  EXPECT_THAT(Seqs(*store_->ReadEvents(id, 0, 0)), ElementsAre());
  // A transition continues the same sequence.
  ASSERT_TRUE(store_->Transition(id, v1::RUNNING, "").ok());
  EXPECT_THAT(Seqs(*store_->ReadEvents(id, 6, 10)), ElementsAre(7, 8));
}

TEST_F(JobStoreTest, ProgressArtifactsAndWorker) {
  std::string id = Id(Create(Request()));
  v1::Progress progress;
  progress.set_epoch(3);
  progress.set_best_miou(0.61);
  ASSERT_TRUE(store_->SetProgress(id, progress).ok());
  v1::Artifact a;
  a.set_name("final/model.pt");
  a.set_size_bytes(10);
  ASSERT_TRUE(store_->AddArtifact(id, a).ok());
  a.set_size_bytes(20);
  ASSERT_TRUE(store_->AddArtifact(id, a).ok());
  a.set_name("export/model.onnx");
  ASSERT_TRUE(store_->AddArtifact(id, a).ok());
  ASSERT_TRUE(store_->SetWorker(id, "workers/gpu0").ok());

  auto job = store_->Get(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->progress().epoch(), 3);
  EXPECT_DOUBLE_EQ(job->progress().best_miou(), 0.61);
  ASSERT_EQ(job->artifacts_size(), 2);
  EXPECT_EQ(job->artifacts(0).name(), "final/model.pt");
  EXPECT_EQ(job->artifacts(0).size_bytes(), 20);
  EXPECT_EQ(job->worker(), "workers/gpu0");
}

// The end and the unlisting of snapshots are one transaction: a reader that
// sees the job ended never sees its snapshots listed.
TEST_F(JobStoreTest, AnEndedJobListsNoSnapshots) {
  std::string id = Id(Create(Request()));
  ASSERT_TRUE(store_->Transition(id, v1::RUNNING, "").ok());
  v1::Artifact a;
  for (const char* name : {"snapshots/2/model.pt", "snapshots/4/model.pt", "final/model.pt"}) {
    a.set_name(name);
    ASSERT_TRUE(store_->AddArtifact(id, a).ok());
  }
  EXPECT_EQ(store_->Get(id)->artifacts_size(), 3);
  auto ended = store_->Transition(id, v1::SUCCEEDED, "");
  ASSERT_TRUE(ended.ok());
  ASSERT_EQ(ended->artifacts_size(), 1);
  EXPECT_EQ(ended->artifacts(0).name(), "final/model.pt");
  EXPECT_EQ(store_->Get(id)->artifacts_size(), 1);
}

TEST_F(JobStoreTest, EverythingSurvivesReopen) {
  v1::CreateJobRequest request = Request();
  request.set_request_id("retry-me");
  std::string id = Id(Create(request));
  ASSERT_TRUE(store_->Transition(id, v1::RUNNING, "").ok());
  v1::JobEvent log;
  log.mutable_log()->set_text("hello");
  ASSERT_TRUE(store_->AppendEvent(id, log).ok());
  v1::Progress progress;
  progress.set_step(42);
  ASSERT_TRUE(store_->SetProgress(id, progress).ok());
  auto before = store_->Get(id);
  ASSERT_TRUE(before.ok());

  Reopen();
  auto after = store_->Get(id);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());
  EXPECT_THAT(Seqs(Events(id)), ElementsAre(1, 2, 3));
  EXPECT_EQ(Events(id)[2].log().text(), "hello");
  auto next = store_->AppendEvent(id, log);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq(), 4);
  auto dup = store_->Create(request);
  ASSERT_TRUE(dup.ok());
  EXPECT_FALSE(dup->second);
  EXPECT_EQ(Id(dup->first), id);
  EXPECT_EQ(store_->ListByState(v1::RUNNING)->size(), 1u);
}

TEST_F(JobStoreTest, ConcurrentAppendsGetContiguousUniqueSeqs) {
  std::string id = Id(Create(Request()));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        v1::JobEvent e;
        e.mutable_log()->set_text(std::to_string(t));
        auto stored = store_->AppendEvent(id, e);
        if (stored.ok()) got[t].push_back(stored->seq());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> returned;
  for (const auto& seqs : got) {
    EXPECT_EQ(seqs.size(), static_cast<size_t>(kPerThread));
    EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
    returned.insert(seqs.begin(), seqs.end());
  }
  EXPECT_EQ(returned.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<v1::JobEvent> events = Events(id);
  ASSERT_EQ(events.size(), static_cast<size_t>(kThreads * kPerThread + 1));
  for (size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(events[i].seq(), static_cast<int64_t>(i + 1));
}

TEST_F(JobStoreTest, FileThatIsNotADatabaseFailsOpen) {
  store_.reset();
  for (int lines : {1, 200}) {
    std::string bad = (dir_ / ("notes" + std::to_string(lines) + ".txt")).string();
    {
      std::ofstream out(bad, std::ios::binary);
      for (int i = 0; i < lines; ++i) out << "this is not a SQLite database, just text\n";
    }
    auto opened = JobStore::Open(bad, SystemClock());
    ASSERT_FALSE(opened.ok());
    EXPECT_THAT(opened.status().message(), HasSubstr(bad));
    EXPECT_THAT(opened.status().message(), HasSubstr("not a database"));
  }

  auto missing = JobStore::Open((dir_ / "no" / "such" / "dir.db").string(), SystemClock());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("dir.db"));
}

TEST_F(JobStoreTest, NewerSchemaVersionFailsOpen) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto opened = JobStore::Open(path_, SystemClock());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(opened.status().message(), HasSubstr(path_));
}

TEST_F(JobStoreTest, AVersion1DatabaseIsUpgradedWithItsJobsOwnersAndGpus) {
  v1::CreateJobRequest gpu_job;
  gpu_job.mutable_spec()->set_kind(v1::TRAIN);
  gpu_job.mutable_spec()->set_gpus(2);
  ASSERT_TRUE(store_->Create(gpu_job, "alice").ok());
  ASSERT_TRUE(store_->Create(gpu_job, "bob").ok());
  store_.reset();
  // Back to what version 1 wrote: no lease table, no owner or gpus column.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE leases; DROP INDEX jobs_by_state_owner; DROP INDEX jobs_queue;"
                         "ALTER TABLE jobs DROP COLUMN owner; ALTER TABLE jobs DROP COLUMN gpus;"
                         "PRAGMA user_version = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Reopen();
  const std::string alice = "alice";
  EXPECT_EQ(*store_->CountByState(v1::QUEUED, &alice), 1);
  EXPECT_EQ(*store_->CountByState(v1::QUEUED), 2);
  EXPECT_TRUE(store_->IdsByState(v1::QUEUED, /*max_gpus=*/1, 10, 0)->empty());
  EXPECT_EQ(store_->IdsByState(v1::QUEUED, /*max_gpus=*/2, 10, 0)->size(), 2u);
  EXPECT_TRUE(store_->SetLeaseToken(store_->IdsByState(v1::QUEUED, 2, 1, 0)->front(), "d").ok());
}

TEST(SystemClockTest, IsWallTimeInMicros) {
  int64_t now = SystemClock()();
  EXPECT_GT(now, kStartUs);  // after 2023
  EXPECT_LT(now, kStartUs + 100LL * 365 * 86400 * 1000000);
}

}  // namespace
}  // namespace segqat::server
