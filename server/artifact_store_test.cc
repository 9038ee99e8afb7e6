// ArtifactStore: names that may not leave a job's folder, checks before
// serving, removal.
#include "server/artifact_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/sha256.h"

namespace segqat::server {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(CheckRelativeNameTest, RefusesNamesThatLeaveOrBreakThePath) {
  for (const std::string& bad :
       {std::string(""), std::string("/etc/passwd"), std::string("../jobs.db"),
        std::string("final/../../x"), std::string("a//b"), std::string("./a"), std::string("a\\b"),
        // Found by fuzz_requests: a NUL cuts the path short at the system call.
        std::string("fina\n\0\0\0\0\0\0\0pt", 15), std::string("final\0/model.pt", 15),
        std::string("a\x7f"), std::string(2000, 'a')}) {
    absl::Status st = CheckRelativeName(bad, "artifact");
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << bad;
    EXPECT_THAT(std::string(st.message()), HasSubstr("artifact"));
    EXPECT_LT(st.message().size(), 1000u);  // never echoes unbounded input
    EXPECT_EQ(std::string(st.message()).find('\0'), std::string::npos);
  }
  for (const char* good : {"final/model.pt", "snapshots/12/model.pt", "job.log", "..a"}) {
    EXPECT_TRUE(CheckRelativeName(good, "artifact").ok()) << good;
  }
}

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/segqat_artifacts_XXXXXX";
    root_ = mkdtemp(tmpl);
    fs::create_directories(root_ / "jobs" / "j1" / "snapshots" / "2");
    Write("snapshots/2/model.pt", "weights");
    Write("job.log", "line\n");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(root_ / "jobs" / "j1" / name, std::ios::binary) << bytes;
  }
  v1::Artifact Recorded(const std::string& name, const std::string& bytes) {
    v1::Artifact a;
    a.set_name(name);
    a.set_size_bytes(static_cast<int64_t>(bytes.size()));
    Sha256 h;
    h.Update(bytes);
    a.set_sha256(h.HexDigest());
    return a;
  }
  fs::path root_;
};

TEST_F(ArtifactStoreTest, VerifyRefusesATruncatedOrChangedFile) {
  ArtifactStore store(root_.string());
  const v1::Artifact log = Recorded("job.log", "line\n");
  EXPECT_TRUE(store.Verify("j1", log).ok());
  Write("job.log", "line");  // truncated
  absl::Status st = store.Verify("j1", log);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("4 bytes"));
  usleep(2000);                // a new modification time
  Write("job.log", "LINE\n");  // same size, other bytes
  st = store.Verify("j1", log);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("sha256"));
  usleep(2000);
  Write("job.log", "line\n");
  EXPECT_TRUE(store.Verify("j1", log).ok());
}

TEST_F(ArtifactStoreTest, RemoveTakesAPrefixAndTheFoldersItEmptied) {
  ArtifactStore store(root_.string());
  ASSERT_TRUE(store.Remove("j1", "snapshots/2").ok());
  EXPECT_FALSE(fs::exists(root_ / "jobs" / "j1" / "snapshots"));
  EXPECT_TRUE(fs::exists(root_ / "jobs" / "j1" / "job.log"));
  EXPECT_TRUE(absl::IsInvalidArgument(store.Remove("j1", "../j2")));
  ASSERT_TRUE(store.Remove("j1", "").ok());
  EXPECT_FALSE(fs::exists(root_ / "jobs" / "j1"));
}

}  // namespace
}  // namespace segqat::server
