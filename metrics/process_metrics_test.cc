#include "metrics/process_metrics.h"

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::metrics {
namespace {

using ::testing::HasSubstr;

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A directory laid out like /proc with known figures.
class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("fake_proc_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    // Fields 14/15 (utime/stime) = 250/150 ticks, 22 (starttime) = 1000
    // ticks, 23 (vsize) = 8192000 bytes. The command name holds ") (" to
    // check that parsing starts after the last ')'.
    WriteFile(root_ / "self/stat",
              "4242 (seg) (qatd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 "
              "3 0 1000 8192000 300 18446744073709551615\n");
    WriteFile(root_ / "self/statm", "2000 300 100 10 0 500 0\n");
    WriteFile(root_ / "stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n");
    WriteFile(root_ / "self/limits",
              "Limit                     Soft Limit           Hard Limit           Units\n"
              "Max open files            1024                 1048576              files\n");
    for (const char* fd : {"0", "1", "2"}) WriteFile(root_ / "self/fd" / fd, "");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::filesystem::path root_;
};

TEST_F(FakeProcTest, ReadsEachFigure) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  absl::StatusOr<ProcessStats> stats = ReadProcessStats(root_.string());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_DOUBLE_EQ(stats->cpu_seconds, 400 / ticks);
  EXPECT_DOUBLE_EQ(stats->start_time_seconds, 1700000000 + 1000 / ticks);
  EXPECT_DOUBLE_EQ(stats->virtual_memory_bytes, 8192000);
  EXPECT_DOUBLE_EQ(stats->resident_memory_bytes, 300 * page);
  EXPECT_DOUBLE_EQ(stats->open_fds, 3);
  EXPECT_DOUBLE_EQ(stats->max_fds, 1024);
}

TEST_F(FakeProcTest, MissingOrMangledFilesAreErrorsNamingThem) {
  std::filesystem::remove(root_ / "stat");
  absl::StatusOr<ProcessStats> stats = ReadProcessStats(root_.string());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(stats.status().message(), HasSubstr("/stat"));

  WriteFile(root_ / "stat", "btime 1\n");
  WriteFile(root_ / "self/stat", "1 (x) S 1 2\n");
  stats = ReadProcessStats(root_.string());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(stats.status().message(), HasSubstr("self/stat"));
}

TEST(ProcessMetricsTest, RealProcessFiguresArePlausible) {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_GE(stats->cpu_seconds, 0);
  EXPECT_GT(stats->resident_memory_bytes, 1 << 20);  // A gtest binary is over 1 MiB.
  EXPECT_GE(stats->virtual_memory_bytes, stats->resident_memory_bytes);
  EXPECT_GE(stats->open_fds, 3);                     // stdin, stdout, stderr.
  EXPECT_GT(stats->start_time_seconds, now - 3600);  // Started this past hour...
  EXPECT_LE(stats->start_time_seconds, now + 1);     // ...and not in the future.
}

TEST(ProcessMetricsTest, RegisteredFamiliesAppearInScrapes) {
  Registry registry;
  ASSERT_TRUE(RegisterProcessMetrics(&registry).ok());
  EXPECT_EQ(RegisterProcessMetrics(&registry).code(), absl::StatusCode::kAlreadyExists);
  const std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  for (const char* gauge : {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                            "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + gauge + " gauge\n"));
  }
  // Values come from the collector, so they are not the initial zero.
  EXPECT_THAT(text, ::testing::Not(HasSubstr("process_resident_memory_bytes 0\n")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("process_start_time_seconds 0\n")));
}

}  // namespace
}  // namespace segqat::metrics
