#include "server/lease_table.h"

#include <gtest/gtest.h>

namespace segqat::server {
namespace {

constexpr int64_t kTimeout = 5'000'000;  // 5 s

class LeaseTableTest : public ::testing::Test {
 protected:
  int64_t now_ = 1'000'000;
  LeaseTable table_{[this] { return now_; }, kTimeout};
};

TEST_F(LeaseTableTest, ReportsRenewTheLeaseUntilTheyStop) {
  table_.Grant("j1", 0, "w1", 1, LeaseTokenDigest("tok-w1-1"));
  now_ += kTimeout - 1;
  ASSERT_TRUE(table_.Renew("j1", 0, "w1", 1, "tok-w1-1").ok());
  now_ += kTimeout - 1;  // 2 timeouts after the grant, one after the renewal
  EXPECT_TRUE(table_.TakeExpired().empty());
  now_ += 1;
  auto expired = table_.TakeExpired();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].job_id, "j1");
  EXPECT_EQ(expired[0].worker_id, "w1");
  EXPECT_EQ(table_.size(), 0u);
  // Gone: the worker's next report is refused.
  EXPECT_EQ(table_.Renew("j1", 0, "w1", 1, "tok-w1-1").status().code(), absl::StatusCode::kAborted);
}

TEST_F(LeaseTableTest, AnOlderAttemptOrAnotherWorkerIsFencedOff) {
  table_.Grant("j1", 0, "w1", 1, LeaseTokenDigest("tok-w1-1"));
  table_.Grant("j1", 0, "w2", 2, LeaseTokenDigest("tok-w2-2"));  // requeued and placed again
  auto stale = table_.Renew("j1", 0, "w1", 1, "tok-w1-1");
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.status().message().find("attempt 1 is stale"), std::string::npos);
  EXPECT_EQ(table_.Check("j1", 0, "w2", 1, "tok-w2-1").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(table_.Check("j1", 0, "w1", 2, "tok-w1-2").code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(table_.Check("j1", 0, "w2", 2, "tok-w2-2").ok());
}

TEST_F(LeaseTableTest, TheAttemptNumberWithoutTheTokenIsRefused) {
  table_.Grant("j1", 0, "w1", 1, LeaseTokenDigest("secret-of-w1"));
  // What a viewer knows (job, attempt, worker name) is not enough.
  for (const std::string& guess : {std::string(), std::string("1"), std::string("secret-of-w2"),
                                   LeaseTokenDigest("secret-of-w1")}) {
    const absl::Status st = table_.Check("j1", 0, "w1", 1, guess);
    EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << guess;
    EXPECT_NE(st.message().find("wrong lease token"), std::string::npos);
    EXPECT_EQ(st.message().find("secret-of-w1"), std::string::npos);
    EXPECT_EQ(table_.Renew("j1", 0, "w1", 1, guess).status().code(), absl::StatusCode::kAborted);
  }
  EXPECT_TRUE(table_.Renew("j1", 0, "w1", 1, "secret-of-w1").ok());
  // A lease re-armed without a digest (a job store from before tokens)
  // accepts no token at all: its worker is told to drop it.
  table_.Grant("j2", 0, "w1", 4, "");
  EXPECT_EQ(table_.Check("j2", 0, "w1", 4, "").code(), absl::StatusCode::kAborted);
}

TEST_F(LeaseTableTest, ReleasedLeasesNeverExpire) {
  table_.Grant("j1", 0, "w1", 1, LeaseTokenDigest("tok-w1-1"));
  table_.Grant("j2", 0, "w2", 1, LeaseTokenDigest("tok-w2-1"));
  table_.Release("j1", 0);
  now_ += 10 * kTimeout;
  auto expired = table_.TakeExpired();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].job_id, "j2");
}

TEST_F(LeaseTableTest, EachRankOfAJobHasItsOwnLease) {
  table_.Grant("j1", 0, "w1", 1, LeaseTokenDigest("tok-w1-1"));
  table_.Grant("j1", 1, "w2", 1, LeaseTokenDigest("tok-w2-1"));
  table_.Grant("j10", 0, "w3", 1, LeaseTokenDigest("tok-w3-1"));  // a job whose id extends j1's
  EXPECT_TRUE(table_.Check("j1", 1, "w2", 1, "tok-w2-1").ok());
  EXPECT_EQ(table_.Check("j1", 1, "w1", 1, "tok-w1-1").code(), absl::StatusCode::kAborted);
  table_.ReleaseJob("j1");
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_TRUE(table_.Check("j10", 0, "w3", 1, "tok-w3-1").ok());
}

TEST_F(LeaseTableTest, HeldByFindsAWorkersLease) {
  EXPECT_FALSE(table_.HeldBy("w1").has_value());
  table_.Grant("j7", 0, "w1", 3, LeaseTokenDigest("tok-w1-3"));
  ASSERT_TRUE(table_.HeldBy("w1").has_value());
  EXPECT_EQ(table_.HeldBy("w1")->fencing, 3);
  EXPECT_FALSE(table_.HeldBy("w2").has_value());
}

}  // namespace
}  // namespace segqat::server
