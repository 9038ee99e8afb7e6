// Shared by the JobStore tests: a store on a temporary file with a fake
// clock, and small helpers.
#ifndef SEGQAT_SERVER_JOB_STORE_TEST_UTIL_H_
#define SEGQAT_SERVER_JOB_STORE_TEST_UTIL_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "server/job_store.h"

namespace segqat::server {
namespace testing_util {
namespace fs = std::filesystem;

inline constexpr int64_t kStartUs = 1'700'000'000'000'000;

inline std::string Id(const v1::Job& job) { return job.name().substr(std::string("jobs/").size()); }

inline v1::CreateJobRequest Request(v1::JobKind kind = v1::QUANT_TRAIN, int priority = 0) {
  v1::CreateJobRequest r;
  r.mutable_spec()->set_kind(kind);
  r.mutable_spec()->set_config_yaml("TRAIN:\n  EPOCHS: 1\n");
  r.mutable_spec()->add_overrides("TRAIN.LR");
  r.mutable_spec()->add_overrides("0.01");
  r.set_priority(priority);
  return r;
}

inline std::vector<int64_t> Seqs(const std::vector<v1::JobEvent>& events) {
  std::vector<int64_t> seqs;
  for (const auto& e : events) seqs.push_back(e.seq());
  return seqs;
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("segqat_job_store_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "jobs.db").string();
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto store = JobStore::Open(path_, [this] { return now_us_.load(); });
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  v1::Job Create(const v1::CreateJobRequest& request) {
    auto created = store_->Create(request);
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return v1::Job();
    EXPECT_TRUE(created->second);
    return created->first;
  }
  // Every stored event of the job, read a page at a time.
  std::vector<v1::JobEvent> Events(const std::string& id) {
    std::vector<v1::JobEvent> all;
    for (;;) {
      auto page = store_->ReadEvents(id, all.empty() ? 0 : all.back().seq(), 1000);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || page->empty()) return all;
      all.insert(all.end(), page->begin(), page->end());
    }
  }

  fs::path dir_;
  std::string path_;
  std::atomic<int64_t> now_us_{kStartUs};
  std::unique_ptr<JobStore> store_;
};

}  // namespace testing_util
}  // namespace segqat::server

#endif  // SEGQAT_SERVER_JOB_STORE_TEST_UTIL_H_
