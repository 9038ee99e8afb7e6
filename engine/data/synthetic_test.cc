#include "engine/data/synthetic.h"

#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/data/cityscapes.h"
#include "engine/data/file_list.h"
#include "engine/data/image_io.h"
#include "engine/data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::data {
namespace {

namespace fs = std::filesystem;
using ::segqat::data::testing::ReadBytes;
using ::segqat::data::testing::ScopedTempDir;
using ::testing::HasSubstr;

SyntheticOptions SmallOptions(const fs::path& out_dir, uint64_t seed) {
  SyntheticOptions options;
  options.out_dir = out_dir.string();
  options.train_images = 3;
  options.val_images = 16;
  options.height = 128;
  options.width = 256;
  options.seed = seed;
  return options;
}

// Relative path -> bytes of every file under dir.
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), dir).string()] = ReadBytes(entry.path().string());
    }
  }
  return files;
}

class SyntheticDatasetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir("SyntheticDatasetTest");
    ASSERT_TRUE(MakeSyntheticDataset(SmallOptions(dir_->path(), 7)).ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Root() { return dir_->path().string(); }

  static ScopedTempDir* dir_;
};

ScopedTempDir* SyntheticDatasetTest::dir_ = nullptr;

TEST_F(SyntheticDatasetTest, WritesTheCityscapesLayoutAndFileLists) {
  const fs::path root = Root();
  EXPECT_TRUE(
      fs::is_regular_file(root / "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"));
  EXPECT_TRUE(fs::is_regular_file(
      root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"));
  EXPECT_TRUE(
      fs::is_regular_file(root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"));
  const std::map<std::string, std::string> files = Snapshot(root);
  // 19 images x 3 PNGs + 2 lists, and no temporary files left behind.
  EXPECT_EQ(files.size(), 19u * 3 + 2);
  for (const auto& [name, bytes] : files) EXPECT_THAT(name, ::testing::Not(HasSubstr(".tmp")));

  absl::StatusOr<std::vector<ListEntry>> train =
      ReadFileList(Root() + "/train_list.txt", Root(), " ");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size(), 3u);
}

TEST_F(SyntheticDatasetTest, FileListMatchesTheDirectoryScanAndEveryEntryLoads) {
  absl::StatusOr<std::vector<ListEntry>> listed =
      ReadFileList(Root() + "/val_list.txt", Root(), " ");
  ASSERT_TRUE(listed.ok()) << listed.status();
  absl::StatusOr<std::vector<ListEntry>> scanned = ScanCityscapes(Root(), "val");
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  ASSERT_EQ(listed->size(), 16u);
  ASSERT_EQ(scanned->size(), 16u);
  for (size_t i = 0; i < listed->size(); ++i) {
    EXPECT_EQ(fs::path((*listed)[i].image_path).lexically_normal(),
              fs::path((*scanned)[i].image_path).lexically_normal());
    absl::StatusOr<Sample> sample = LoadSample((*listed)[i], 19, 255);
    ASSERT_TRUE(sample.ok()) << sample.status();
    EXPECT_EQ(sample->image.size(), cv::Size(256, 128));
    // The labelIds file maps back to exactly the labelTrainIds content.
    ListEntry via_label_ids = (*listed)[i];
    const std::string suffix = "_labelTrainIds.png";
    via_label_ids.label_path.replace(via_label_ids.label_path.size() - suffix.size(), suffix.size(),
                                     "_labelIds.png");
    absl::StatusOr<Sample> mapped = LoadSample(via_label_ids, 19, 255);
    ASSERT_TRUE(mapped.ok()) << mapped.status();
    EXPECT_EQ(cv::countNonZero(mapped->label != sample->label), 0) << via_label_ids.label_path;
  }
}

TEST_F(SyntheticDatasetTest, SixteenImagesShowAllNineteenClasses) {
  absl::StatusOr<std::vector<ListEntry>> val = ReadFileList(Root() + "/val_list.txt", Root(), " ");
  ASSERT_TRUE(val.ok()) << val.status();
  std::array<int64_t, 256> pixels{};
  int classes_per_image = 0;
  for (const ListEntry& entry : *val) {
    absl::StatusOr<Sample> sample = LoadSample(entry, 19, 255);
    ASSERT_TRUE(sample.ok()) << sample.status();
    std::array<int64_t, 256> here{};
    for (int y = 0; y < sample->label.rows; ++y) {
      for (int x = 0; x < sample->label.cols; ++x) ++here[sample->label.at<uint8_t>(y, x)];
    }
    for (int c = 0; c < 256; ++c) {
      pixels[c] += here[c];
      classes_per_image += c < 19 && here[c] > 0;
    }
  }
  for (int c = 0; c < cityscapes::kNumClasses; ++c) {
    EXPECT_GT(pixels[c], 0) << cityscapes::kClassNames[c];
  }
  EXPECT_GE(classes_per_image, 16 * 12);  // most classes in every image, on average
}

TEST(SyntheticTest, SameSeedGivesIdenticalBytesAndAnotherSeedDiffers) {
  ScopedTempDir dir;
  SyntheticOptions options = SmallOptions(dir.path() / "a", 3);
  options.val_images = 2;
  ASSERT_TRUE(MakeSyntheticDataset(options).ok());
  options.out_dir = (dir.path() / "b").string();
  ASSERT_TRUE(MakeSyntheticDataset(options).ok());
  options.out_dir = (dir.path() / "c").string();
  options.seed = 4;
  ASSERT_TRUE(MakeSyntheticDataset(options).ok());
  const auto a = Snapshot(dir.path() / "a");
  EXPECT_EQ(a, Snapshot(dir.path() / "b"));
  const auto c = Snapshot(dir.path() / "c");
  ASSERT_EQ(a.size(), c.size());
  const std::string image = "leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png";
  ASSERT_TRUE(a.count(image));
  EXPECT_NE(a.at(image), c.at(image));
}

TEST(SyntheticTest, InvalidOptionsAreRejected) {
  SyntheticOptions options;
  EXPECT_EQ(MakeSyntheticDataset(options).code(), absl::StatusCode::kInvalidArgument);
  options.out_dir = "/nonexistent-never-created";
  options.width = 8;
  EXPECT_EQ(MakeSyntheticDataset(options).code(), absl::StatusCode::kInvalidArgument);
  options.width = 64;
  options.val_images = -1;
  EXPECT_EQ(MakeSyntheticDataset(options).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SyntheticTest, UnwritableOutputIsAnErrorNamingThePath) {
  ScopedTempDir dir;
  const std::string blocker = dir.File("file");
  testing::WriteText(blocker, "x");
  SyntheticOptions options = SmallOptions(fs::path(blocker) / "out", 1);
  absl::Status status = MakeSyntheticDataset(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr(blocker));
}

}  // namespace
}  // namespace segqat::data
