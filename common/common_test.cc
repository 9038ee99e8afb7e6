// What the binaries share (common/): job names, the retry policy, and
// statuses crossing between absl and gRPC keep their code and message.
#include <gtest/gtest.h>

#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/job_name.h"

namespace segqat {
namespace {

TEST(JobNameTest, NamesAndIds) {
  EXPECT_EQ(JobName("abc123"), "jobs/abc123");
  EXPECT_EQ(JobIdOf("jobs/abc123"), "abc123");
  EXPECT_EQ(JobIdOf("abc123"), "abc123");  // segqat takes a bare id too
  EXPECT_EQ(*ParseJobName("jobs/0a1b-c_d"), "0a1b-c_d");
  for (const char* bad : {"abc123", "jobs/", "jobs/a/b", "jobs/../x", "job/abc"}) {
    auto id = ParseJobName(bad);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseJobName("jobs/" + std::string(65, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJobName("x", "lease.job").status().message(),
            "lease.job: 'x' is not a job name (expected jobs/ID)");
}

TEST(BackoffTest, DoublesUpToItsCeilingAndStartsOverAfterASuccess) {
  using std::chrono::milliseconds;
  Backoff b(milliseconds(200), milliseconds(1000));
  EXPECT_EQ(b.Next(), milliseconds(200));
  EXPECT_EQ(b.Next(), milliseconds(400));
  EXPECT_EQ(b.Next(), milliseconds(800));
  EXPECT_EQ(b.Next(), milliseconds(1000));
  EXPECT_EQ(b.Next(), milliseconds(1000));
  b.set_max(milliseconds(300));  // a shorter report interval
  EXPECT_EQ(b.Next(), milliseconds(300));
  b.Reset();
  EXPECT_EQ(b.Next(), milliseconds(200));
}

TEST(GrpcStatusTest, CodeAndMessageCrossBothWays) {
  const absl::Status st = absl::NotFoundError("no job jobs/x");
  const grpc::Status g = ToGrpc(st);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(FromGrpc(g), st);
  EXPECT_EQ(FromGrpc(g, "download").message(), "download: no job jobs/x");
  EXPECT_TRUE(FromGrpc(ToGrpc(absl::OkStatus()), "x").ok());
}

}  // namespace
}  // namespace segqat
