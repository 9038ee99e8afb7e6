// JobStore listing: paging, filters, tokens, scheduling order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "server/job_store.h"
#include "server/job_store_test_util.h"

namespace segqat::server {
namespace {
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace testing_util;  // NOLINT

TEST_F(JobStoreTest, ListPagesNewestFirstWithoutDuplicates) {
  std::vector<std::string> ids;  // in creation order
  for (int i = 0; i < 7; ++i) {
    ids.push_back(Id(Create(Request())));
    if (i % 2 == 1) now_us_ += 10;  // pairs share a create time: ties break by id
  }
  v1::ListJobsRequest request;
  std::vector<std::string> seen;
  std::vector<int> sizes;
  std::vector<int64_t> create_us;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store_->List(request, 3);
    ASSERT_TRUE(page.ok()) << page.status();
    sizes.push_back(page->jobs_size());
    for (const auto& job : page->jobs()) {
      seen.push_back(Id(job));
      create_us.push_back(job.create_time().seconds() * 1000000 + job.create_time().nanos() / 1000);
    }
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  EXPECT_THAT(sizes, ElementsAre(3, 3, 1));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 7u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()),
            std::set<std::string>(seen.begin(), seen.end()));
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_TRUE(create_us[i - 1] > create_us[i] ||
                (create_us[i - 1] == create_us[i] && seen[i - 1] > seen[i]))
        << i;
  }
  EXPECT_EQ(seen.front(), ids.back());

  // Exactly one page's worth: no token.
  auto all = store_->List(v1::ListJobsRequest(), 7);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->jobs_size(), 7);
  EXPECT_TRUE(all->next_page_token().empty());
}

TEST_F(JobStoreTest, ListPagesByBytesToo) {
  // Five jobs of about 300 KB each: a 1 MB page holds three, whatever the count.
  for (int i = 0; i < 5; ++i) {
    v1::CreateJobRequest big = Request();
    big.mutable_spec()->set_config_yaml(std::string(300 << 10, '#'));
    Create(big);
    now_us_ += 10;
  }
  v1::ListJobsRequest request;
  std::vector<int> sizes;
  std::set<std::string> seen;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store_->List(request, 500, int64_t{1} << 20);
    ASSERT_TRUE(page.ok()) << page.status();
    sizes.push_back(page->jobs_size());
    EXPECT_LE(page->ByteSizeLong(), size_t{1} << 20);
    for (const auto& job : page->jobs()) seen.insert(Id(job));
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  EXPECT_THAT(sizes, ElementsAre(3, 2));
  EXPECT_EQ(seen.size(), 5u);
  // A job larger than the budget still comes, alone on its page.
  auto one = store_->List(v1::ListJobsRequest(), 500, 1000);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->jobs_size(), 1);
  EXPECT_FALSE(one->next_page_token().empty());
}

TEST_F(JobStoreTest, ListFilters) {
  v1::CreateJobRequest train = Request(v1::TRAIN);
  (*train.mutable_labels())["team"] = "a";
  (*train.mutable_labels())["exp"] = "1";
  std::string t1 = Id(Create(train));
  now_us_ += 1;
  (*train.mutable_labels())["exp"] = "2";
  std::string t2 = Id(Create(train));
  now_us_ += 1;
  std::string q1 = Id(Create(Request(v1::QUANT_TRAIN)));
  now_us_ += 1;
  ASSERT_TRUE(store_->Transition(t2, v1::RUNNING, "").ok());

  auto ids = [&](const v1::ListJobsRequest& r) {
    std::vector<std::string> out;
    auto page = store_->List(r, 50);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const auto& j : page->jobs()) out.push_back(Id(j));
    }
    return out;
  };
  v1::ListJobsRequest r;
  EXPECT_THAT(ids(r), ElementsAre(q1, t2, t1));
  r.set_state(v1::QUEUED);
  EXPECT_THAT(ids(r), ElementsAre(q1, t1));
  r.set_kind(v1::TRAIN);
  EXPECT_THAT(ids(r), ElementsAre(t1));
  r.clear_state();
  EXPECT_THAT(ids(r), ElementsAre(t2, t1));
  (*r.mutable_labels())["team"] = "a";
  EXPECT_THAT(ids(r), ElementsAre(t2, t1));
  (*r.mutable_labels())["exp"] = "2";
  EXPECT_THAT(ids(r), ElementsAre(t2));
  (*r.mutable_labels())["exp"] = "3";
  EXPECT_THAT(ids(r), ElementsAre());

  // Label filtering happens before paging: pages are full when matches remain.
  v1::ListJobsRequest team;
  (*team.mutable_labels())["team"] = "a";
  auto first = store_->List(team, 1);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->jobs_size(), 1);
  EXPECT_EQ(Id(first->jobs(0)), t2);
  team.set_page_token(first->next_page_token());
  auto second = store_->List(team, 1);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->jobs_size(), 1);
  EXPECT_EQ(Id(second->jobs(0)), t1);
  EXPECT_TRUE(second->next_page_token().empty());
}

TEST_F(JobStoreTest, ForeignOrGarbageTokenIsInvalidArgument) {
  for (int i = 0; i < 3; ++i) Create(Request());
  v1::ListJobsRequest request;
  request.set_state(v1::QUEUED);
  auto page = store_->List(request, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_FALSE(page->next_page_token().empty());

  v1::ListJobsRequest other;
  other.set_page_token(page->next_page_token());
  auto foreign = store_->List(other, 1);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(foreign.status().message(), HasSubstr("page_token"));

  (*request.mutable_labels())["x"] = "y";
  request.set_page_token(page->next_page_token());
  EXPECT_EQ(store_->List(request, 1).status().code(), absl::StatusCode::kInvalidArgument);

  for (const char* garbage : {"garbage!", "Zm9v", "%%%", "MTox"}) {
    v1::ListJobsRequest bad;
    bad.set_page_token(garbage);
    auto result = store_->List(bad, 1);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << garbage;
    EXPECT_THAT(result.status().message(), HasSubstr("page_token:")) << garbage;
  }
  // The page size may change between pages.
  request.clear_labels();
  request.set_page_token(page->next_page_token());
  EXPECT_TRUE(store_->List(request, 2).ok());
}

TEST_F(JobStoreTest, ListByStateIsPriorityThenAge) {
  std::string low_old = Id(Create(Request(v1::TRAIN, 0)));
  now_us_ += 1;
  std::string high = Id(Create(Request(v1::TRAIN, 10)));
  now_us_ += 1;
  std::string low_new = Id(Create(Request(v1::TRAIN, 0)));
  now_us_ += 1;
  std::string running = Id(Create(Request(v1::TRAIN, 99)));
  ASSERT_TRUE(store_->Transition(running, v1::RUNNING, "").ok());

  auto queued = store_->ListByState(v1::QUEUED);
  ASSERT_TRUE(queued.ok());
  std::vector<std::string> order;
  for (const auto& j : *queued) order.push_back(Id(j));
  EXPECT_THAT(order, ElementsAre(high, low_old, low_new));
  EXPECT_EQ(store_->ListByState(v1::RUNNING)->size(), 1u);
  EXPECT_TRUE(store_->ListByState(v1::SUCCEEDED)->empty());
}

}  // namespace
}  // namespace segqat::server
