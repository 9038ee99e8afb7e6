// Which worker ids a caller's credentials may use, and which token files
// segqatd refuses to trust.
#include "server/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace segqat::server {
namespace {

Caller Worker(const std::string& name) { return Caller{name, Role::kWorker}; }

TEST(CallerTest, AWorkerTokensNameIsTheIdItMayUseAndItsSlots) {
  EXPECT_TRUE(Worker("gpu-a").MayUseWorkerId("gpu-a"));
  EXPECT_TRUE(Worker("gpu-a").MayUseWorkerId("gpu-a-cuda0"));
  EXPECT_FALSE(Worker("gpu-a").MayUseWorkerId("gpu-ab"));
  EXPECT_FALSE(Worker("gpu-a").MayUseWorkerId("gpu-b"));
  EXPECT_FALSE(Worker("gpu-a").MayUseWorkerId("gpu"));
}

TEST(CallerTest, AStarNamesAPrefix) {
  EXPECT_TRUE(Worker("segqat-worker-*").MayUseWorkerId("segqat-worker-7f9c"));
  EXPECT_FALSE(Worker("segqat-worker-*").MayUseWorkerId("segqat-other"));
}

TEST(CallerTest, TheEmbeddedWorkersIdsAreTheirsAlone) {
  EXPECT_FALSE(Worker("*").MayUseWorkerId("local-0"));
  EXPECT_FALSE(Worker("l*").MayUseWorkerId("local-0"));
  EXPECT_FALSE(Caller{}.MayUseWorkerId("local-0"));  // auth off: still not
  EXPECT_TRUE(Caller{}.MayUseWorkerId("my-laptop"));
  const Caller embedded{"local-workers", Role::kWorker, /*internal=*/true};
  EXPECT_TRUE(embedded.MayUseWorkerId("local-0"));
  EXPECT_FALSE(embedded.MayUseWorkerId("gpu-a"));
}

TEST(CallerTest, AnAdminIsNoWorker) {
  EXPECT_FALSE((Caller{"ops", Role::kAdmin}).MayUseWorkerId("ops"));
  EXPECT_FALSE((Caller{"alice", Role::kSubmitter}).MayUseWorkerId("alice"));
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("segqat_auth_test_" + std::to_string(::getpid())))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  absl::StatusOr<Auth> Load(const std::string& text, mode_t mode) {
    std::ofstream(path_) << text;
    ::chmod(path_.c_str(), mode);
    return Auth::FromFile(path_);
  }
  std::string path_;
};

TEST_F(TokenFileTest, AFileOthersMayWriteIsRefused) {
  for (mode_t mode : {0620, 0602, 0660}) {
    auto auth = Load("0123456789abcdef-token admin ops\n", mode);
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kFailedPrecondition) << mode;
    EXPECT_NE(auth.status().message().find("writable by others"), std::string::npos);
  }
  EXPECT_TRUE(Load("0123456789abcdef-token admin ops\n", 0640).ok());
  EXPECT_TRUE(Load("0123456789abcdef-token admin ops\n", 0600).ok());
}

TEST_F(TokenFileTest, AWorkerNameMustBeAnIdOrAPrefixOutsideLocal) {
  for (const char* name : {"local-9", "*", "a*b*", "local-*"}) {
    auto auth = Load(std::string("0123456789abcdef-token worker ") + name + "\n", 0600);
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(auth.status().message().find("line 1"), std::string::npos);
    EXPECT_EQ(auth.status().message().find("0123456789abcdef-token"), std::string::npos);
  }
  EXPECT_TRUE(Load("0123456789abcdef-token worker gpu-*\n", 0600).ok());
}

}  // namespace
}  // namespace segqat::server
