#include "engine/data/file_list.h"

#include <string>
#include <vector>

#include "engine/data/image_io.h"
#include "engine/data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::data {
namespace {

using ::segqat::data::testing::ScopedTempDir;
using ::segqat::data::testing::WriteText;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ReadFileListTest, JoinsRelativePathsAndKeepsAbsoluteOnes) {
  ScopedTempDir dir;
  const std::string list = dir.File("train_list.txt");
  WriteText(list,
            "\xEF\xBB\xBF"
            "a/img1.png a/lbl1.png\r\n"
            "\n"
            "   \n"
            "/abs/img2.png   /abs/lbl2.png\n"
            "b/img3.png\n");
  absl::StatusOr<std::vector<ListEntry>> entries = ReadFileList(list, "/data", " ");
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(*entries, ElementsAre(ListEntry{"/data/a/img1.png", "/data/a/lbl1.png"},
                                    ListEntry{"/abs/img2.png", "/abs/lbl2.png"},
                                    ListEntry{"/data/b/img3.png", ""}));
}

TEST(ReadFileListTest, EmptyDataDirKeepsRelativePaths) {
  ScopedTempDir dir;
  const std::string list = dir.File("list.txt");
  WriteText(list, "x.png|y.png\n");
  absl::StatusOr<std::vector<ListEntry>> entries = ReadFileList(list, "", "|");
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(*entries, ElementsAre(ListEntry{"x.png", "y.png"}));
}

TEST(ReadFileListTest, TooManyFieldsNamesListAndLine) {
  ScopedTempDir dir;
  const std::string list = dir.File("val_list.txt");
  WriteText(list, "a.png b.png\nc.png d.png e.png\n");
  absl::StatusOr<std::vector<ListEntry>> entries = ReadFileList(list, "/data", " ");
  ASSERT_EQ(entries.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(entries.status().message(), HasSubstr(list + ":2:"));
  EXPECT_THAT(entries.status().message(), HasSubstr("3 fields"));
}

TEST(ReadFileListTest, EmptyFieldWithExactSeparatorIsAnError) {
  ScopedTempDir dir;
  const std::string list = dir.File("list.txt");
  WriteText(list, "a.png,b.png\n\nc.png,\n");
  absl::StatusOr<std::vector<ListEntry>> entries = ReadFileList(list, "", ",");
  ASSERT_EQ(entries.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(entries.status().message(), HasSubstr(list + ":3:"));
}

TEST(ReadFileListTest, ErrorsNameTheLineNeverItsBytes) {
  // A "file list" that is any file the worker can read, e.g. /etc/shadow
  // with ':' as the separator: no error may quote it.
  ScopedTempDir dir;
  const std::string list = dir.File("shadow");
  WriteText(list, "root:$6$secrethash:19000:0:99999:7:::\n");
  for (const std::string sep : {":", "$"}) {
    auto entries = ReadFileList(list, "", sep);
    ASSERT_FALSE(entries.ok());
    EXPECT_THAT(entries.status().message(), HasSubstr(list + ":1:"));
    for (const char* secret : {"root", "secrethash", "19000", "99999"}) {
      EXPECT_THAT(entries.status().message(), Not(HasSubstr(secret))) << sep;
    }
  }
  // Read as two fields, the entry's paths are the file's bytes: loading it
  // names its line.
  WriteText(list, "root secrethash\n");
  auto entries = ReadFileList(list, dir.path().string(), " ");
  ASSERT_TRUE(entries.ok());
  auto sample = LoadSample((*entries)[0], 19, 255);
  ASSERT_FALSE(sample.ok());
  EXPECT_THAT(sample.status().message(), HasSubstr(list + " line 1 (its image)"));
  EXPECT_THAT(sample.status().message(), Not(HasSubstr("root")));
}

TEST(ReadFileListTest, MissingListIsNotFound) {
  ScopedTempDir dir;
  const std::string list = (dir.path() / "nope.txt").string();
  absl::StatusOr<std::vector<ListEntry>> entries = ReadFileList(list, "", " ");
  ASSERT_EQ(entries.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(entries.status().message(), HasSubstr(list));
}

TEST(ReadFileListTest, EmptySeparatorIsInvalid) {
  ScopedTempDir dir;
  const std::string list = dir.File("list.txt");
  WriteText(list, "a.png\n");
  EXPECT_EQ(ReadFileList(list, "", "").status().code(), absl::StatusCode::kInvalidArgument);
}

class ScanCityscapesTest : public ::testing::Test {
 protected:
  // Creates an empty file under the temp dir.
  std::string Touch(const std::string& relative) {
    const std::string path = dir_.File(relative);
    WriteText(path, "");
    return path;
  }
  ScopedTempDir dir_;
};

TEST_F(ScanCityscapesTest, PairsImagesWithTrainIdsElseLabelIdsSortedByPath) {
  const std::string img_b = Touch("leftImg8bit/val/zurich/zurich_000001_000019_leftImg8bit.png");
  const std::string img_a = Touch("leftImg8bit/val/aachen/aachen_000002_000019_leftImg8bit.png");
  const std::string img_a0 = Touch("leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png");
  Touch("leftImg8bit/val/aachen/notes.txt");  // Ignored.
  const std::string lbl_b = Touch("gtFine/val/zurich/zurich_000001_000019_gtFine_labelIds.png");
  const std::string lbl_a = Touch("gtFine/val/aachen/aachen_000002_000019_gtFine_labelIds.png");
  const std::string lbl_a_train =
      Touch("gtFine/val/aachen/aachen_000002_000019_gtFine_labelTrainIds.png");
  const std::string lbl_a0 = Touch("gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png");
  (void)lbl_a;

  absl::StatusOr<std::vector<ListEntry>> entries = ScanCityscapes(dir_.path().string(), "val");
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(*entries, ElementsAre(ListEntry{img_a0, lbl_a0}, ListEntry{img_a, lbl_a_train},
                                    ListEntry{img_b, lbl_b}));
}

TEST_F(ScanCityscapesTest, MissingSplitIsNotFound) {
  Touch("leftImg8bit/train/a/a_000000_000019_leftImg8bit.png");
  absl::StatusOr<std::vector<ListEntry>> entries = ScanCityscapes(dir_.path().string(), "val");
  ASSERT_EQ(entries.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(entries.status().message(), HasSubstr("leftImg8bit/val"));
}

TEST_F(ScanCityscapesTest, EmptySplitIsNotFound) {
  std::filesystem::create_directories(dir_.path() / "leftImg8bit" / "val" / "city");
  EXPECT_EQ(ScanCityscapes(dir_.path().string(), "val").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ScanCityscapesTest, ImageWithoutLabelIsNamed) {
  const std::string img = Touch("leftImg8bit/val/bonn/bonn_000003_000019_leftImg8bit.png");
  absl::StatusOr<std::vector<ListEntry>> entries = ScanCityscapes(dir_.path().string(), "val");
  ASSERT_EQ(entries.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(entries.status().message(), HasSubstr(img));
  EXPECT_THAT(entries.status().message(), HasSubstr("bonn_000003_000019_gtFine_labelIds.png"));
}

}  // namespace
}  // namespace segqat::data
