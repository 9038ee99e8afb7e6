// Reads confined to the worker's roots: what is outside stays unread, also
// when a folder is swapped for a link while a job reads through it.
#include "engine/data/confined_read.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "engine/data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::data {
namespace {

namespace fs = std::filesystem;
using ::segqat::data::testing::ScopedTempDir;
using ::segqat::data::testing::WriteText;
using ::testing::HasSubstr;
using ::testing::Not;

class ConfinedReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() / "root";
    outside_ = dir_.path() / "outside";
    fs::create_directories(root_ / "sub");
    fs::create_directories(outside_);
    WriteText((root_ / "sub" / "a.txt").string(), "inside\n");
    WriteText((outside_ / "a.txt").string(), "SECRET\n");
    ConfineReads({root_.string()});
  }
  void TearDown() override { ConfineReads({}); }

  ScopedTempDir dir_;
  fs::path root_, outside_;
};

TEST_F(ConfinedReadTest, ReadsBeneathTheRootsOnly) {
  ASSERT_TRUE(ReadsConfined());
  EXPECT_EQ(*ReadJobFile((root_ / "sub" / "a.txt").string(), "a"), "inside\n");
  // Through `..`, an absolute link and a relative link that leave the root.
  fs::create_symlink(outside_, root_ / "abs-link");
  fs::create_symlink("../../outside", root_ / "sub" / "rel-link");
  fs::create_symlink("sub", root_ / "inner-link");  // stays inside: fine
  for (const fs::path& p : {root_ / ".." / "outside" / "a.txt", root_ / "abs-link" / "a.txt",
                            root_ / "sub" / "rel-link" / "a.txt", outside_ / "a.txt"}) {
    auto read = ReadJobFile(p.string(), "image LIST line 7 (its image)");
    EXPECT_EQ(read.status().code(), absl::StatusCode::kPermissionDenied) << p;
    EXPECT_THAT(read.status().message(), HasSubstr("LIST line 7 (its image) is outside"));
    EXPECT_THAT(read.status().message(), Not(HasSubstr("SECRET")));
  }
  EXPECT_EQ(*ReadJobFile((root_ / "inner-link" / "a.txt").string(), "a"), "inside\n");
  EXPECT_EQ(ReadJobFile((root_ / "nope.txt").string(), "b").status().code(),
            absl::StatusCode::kNotFound);
  // Missing outside the roots reads as outside: a job does not learn what exists.
  EXPECT_EQ(ReadJobFile((outside_ / "nope").string(), "c").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadJobFile(root_.string() + "/sub", "d").status().code(),
            absl::StatusCode::kInvalidArgument);  // a folder
}

TEST_F(ConfinedReadTest, AFolderSwappedForALinkMidReadIsNeverFollowedOut) {
  // root/sub and root/alt (a link to outside) trade places as fast as the
  // kernel allows while the file below is read a thousand times.
  fs::create_symlink(outside_, root_ / "alt");
  std::atomic<bool> stop{false};
  std::atomic<int> swaps{0};
  const std::string sub = (root_ / "sub").string(), alt = (root_ / "alt").string();
  std::thread flipper([&] {
    while (!stop) {
      if (::syscall(SYS_renameat2, AT_FDCWD, sub.c_str(), AT_FDCWD, alt.c_str(),
                    /*RENAME_EXCHANGE=*/2) == 0) {
        ++swaps;
      }
    }
  });
  while (swaps.load() < 10) std::this_thread::yield();  // the flipper is running
  int read_inside = 0, refused = 0;
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::yield();  // let the swaps land between reads on a busy core too
    auto read = ReadJobFile(sub + "/a.txt", "a");
    if (read.ok()) {
      ASSERT_EQ(*read, "inside\n") << "read outside the root at try " << i;
      ++read_inside;
    } else {
      ASSERT_EQ(read.status().code(), absl::StatusCode::kPermissionDenied) << read.status();
      ++refused;
    }
  }
  stop = true;
  flipper.join();
  EXPECT_GT(swaps.load(), 100);
  EXPECT_GT(refused, 0);  // the swaps did land between checks and reads
  EXPECT_EQ(read_inside + refused, 1000);
}

TEST(UnconfinedReadTest, ReadsAnyPathWithoutRoots) {
  ConfineReads({});
  ScopedTempDir dir;
  WriteText(dir.File("x.txt"), "x");
  EXPECT_FALSE(ReadsConfined());
  EXPECT_EQ(*ReadJobFile(dir.File("x.txt"), "x"), "x");
  EXPECT_EQ(ReadJobFile(dir.File("nope"), "y").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace segqat::data
