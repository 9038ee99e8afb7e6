#include "engine/data/image_io.h"

#include <string>

#include "engine/data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::data {
namespace {

using ::segqat::data::testing::ScopedTempDir;
using ::segqat::data::testing::WritePng;
using ::segqat::data::testing::WriteText;
using ::testing::AllOf;
using ::testing::HasSubstr;

class LoadSampleTest : public ::testing::Test {
 protected:
  // A 4x3 image whose pixel (0, 0) is pure red in RGB.
  std::string WriteImage(const std::string& name, cv::Size size = {4, 3}) {
    cv::Mat rgb(size, CV_8UC3, cv::Scalar(10, 20, 30));
    rgb.at<cv::Vec3b>(0, 0) = cv::Vec3b(255, 0, 0);
    const std::string path = dir_.File(name);
    WritePng(path, rgb);
    return path;
  }
  std::string WriteLabel(const std::string& name, uint8_t value, cv::Size size = {4, 3}) {
    const std::string path = dir_.File(name);
    WritePng(path, cv::Mat(size, CV_8UC1, cv::Scalar(value)));
    return path;
  }
  ScopedTempDir dir_;
};

TEST_F(LoadSampleTest, DecodesRgbAndTrainIds) {
  const ListEntry entry{WriteImage("a_leftImg8bit.png"),
                        WriteLabel("a_gtFine_labelTrainIds.png", 18)};
  absl::StatusOr<Sample> sample = LoadSample(entry, 19, 255);
  ASSERT_TRUE(sample.ok()) << sample.status();
  ASSERT_EQ(sample->image.type(), CV_8UC3);
  EXPECT_EQ(sample->image.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 0));  // RGB, not BGR
  EXPECT_EQ(sample->image.at<cv::Vec3b>(1, 1), cv::Vec3b(10, 20, 30));
  ASSERT_EQ(sample->label.type(), CV_8UC1);
  EXPECT_EQ(sample->label.at<uint8_t>(2, 3), 18);
  EXPECT_EQ(sample->image_path, entry.image_path);
}

TEST_F(LoadSampleTest, MapsLabelIdsToTrainIds) {
  const std::string label = dir_.File("a_gtFine_labelIds.png");
  cv::Mat ids(1, 4, CV_8UC1);
  ids.at<uint8_t>(0, 0) = 7;   // road -> 0
  ids.at<uint8_t>(0, 1) = 26;  // car -> 13
  ids.at<uint8_t>(0, 2) = 33;  // bicycle -> 18
  ids.at<uint8_t>(0, 3) = 1;   // ego vehicle -> ignore
  WritePng(label, ids);
  absl::StatusOr<Sample> sample =
      LoadSample({WriteImage("a_leftImg8bit.png", {4, 1}), label}, 19, 255);
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_EQ(sample->label.at<uint8_t>(0, 0), 0);
  EXPECT_EQ(sample->label.at<uint8_t>(0, 1), 13);
  EXPECT_EQ(sample->label.at<uint8_t>(0, 2), 18);
  EXPECT_EQ(sample->label.at<uint8_t>(0, 3), 255);
}

TEST_F(LoadSampleTest, IgnoreIndexIsAccepted) {
  const ListEntry entry{WriteImage("a.png"), WriteLabel("a_label.png", 255)};
  EXPECT_TRUE(LoadSample(entry, 19, 255).ok());
}

TEST_F(LoadSampleTest, ValueAboveNumClassesNamesFileValueAndNumClasses) {
  const ListEntry entry{WriteImage("a.png"), WriteLabel("a_label.png", 30)};
  absl::StatusOr<Sample> sample = LoadSample(entry, 19, 255);
  ASSERT_EQ(sample.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sample.status().message(),
              AllOf(HasSubstr(entry.label_path), HasSubstr("30"), HasSubstr("NUM_CLASSES 19")));
}

TEST_F(LoadSampleTest, MissingImageIsNotFound) {
  const std::string missing = (dir_.path() / "missing.png").string();
  absl::StatusOr<Sample> sample = LoadSample({missing, ""}, 19, 255);
  ASSERT_EQ(sample.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(sample.status().message(), HasSubstr(missing));
}

TEST_F(LoadSampleTest, MissingLabelIsNotFound) {
  const std::string missing = (dir_.path() / "missing_label.png").string();
  absl::StatusOr<Sample> sample = LoadSample({WriteImage("a.png"), missing}, 19, 255);
  ASSERT_EQ(sample.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(sample.status().message(), HasSubstr(missing));
}

TEST_F(LoadSampleTest, OnlyPngJpegAndBmpReachTheDecoders) {
  // Found by tests/fuzz/fuzz_image: a broken PNG signature made OpenCV offer
  // the file to its DICOM decoder (GDCM), which aborted the process.
  const std::string crash(
      "\x89\x50\x4e\x47\x0d\x0a\x1a\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44"
      "\x52\x00\x00\x00\x08\x00\x00\x00\x04\x08\x02\x00\x00\x00\x3c\xaf\xe9\xa7\x00\x00\x00\x14"
      "\x49\x44\x41\x54\x78\x9c\x63\xe4\x3a\x21\xc7\x80\x0d\x30\x61\x15\x25\x4b\x02\x00\x5d\xc0"
      "\x00\xf8\xd3\x25\x65\xf6\x00\x00\x00\x00\x49\x45\x4e\x44\x0a\x00\x00\x00\x0d\x49\x48\x44"
      "\x52\x00\x00\x00\x08\x00\x00\x00\x04\x08\x02\x00\x00\x00\x3c\xaf\xe9\xa7\x00\x00\x00\x14"
      "\x49\x44\x41\x54\x78\x9c\x63\xe4\x3a\x21\xc7\x80\x0d\x30\x61\x15\x25\x4b\x44\x49\x43\x4d"
      "\x02\x00\x5d\xc0\x00\xf8\xd3\x25\x65\xf6\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
      154);
  const std::string path = dir_.File("fuzz_crash.png");
  WriteText(path, crash);
  absl::StatusOr<Sample> sample = LoadSample({path, ""}, 19, 255);
  ASSERT_EQ(sample.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sample.status().message(), HasSubstr("is not a PNG, JPEG or BMP image"));
  WriteText(path, "DICM and other formats");
  EXPECT_EQ(LoadSample({path, ""}, 19, 255).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LoadSampleTest, CorruptPngIsInvalidArgumentNamingPath) {
  const std::string corrupt = dir_.File("corrupt.png");
  WriteText(corrupt, "\x89PNG\r\n\x1a\nthis is not a png");
  absl::StatusOr<Sample> sample = LoadSample({corrupt, ""}, 19, 255);
  ASSERT_EQ(sample.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sample.status().message(), HasSubstr(corrupt));
}

TEST_F(LoadSampleTest, ColourLabelIsRejected) {
  const ListEntry entry{WriteImage("a.png"), WriteImage("colour_label.png")};
  absl::StatusOr<Sample> sample = LoadSample(entry, 19, 255);
  ASSERT_EQ(sample.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sample.status().message(),
              AllOf(HasSubstr(entry.label_path), HasSubstr("single-channel")));
}

TEST_F(LoadSampleTest, SizeMismatchNamesBothFiles) {
  const ListEntry entry{WriteImage("a.png", {4, 3}), WriteLabel("a_label.png", 1, {5, 3})};
  absl::StatusOr<Sample> sample = LoadSample(entry, 19, 255);
  ASSERT_EQ(sample.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sample.status().message(),
              AllOf(HasSubstr(entry.image_path), HasSubstr(entry.label_path)));
}

TEST_F(LoadSampleTest, NoLabelPathGivesAnIgnoredLabel) {
  absl::StatusOr<Sample> sample = LoadSample({WriteImage("a.png"), ""}, 19, 250);
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_EQ(sample->label.size(), cv::Size(4, 3));
  EXPECT_EQ(cv::countNonZero(sample->label != 250), 0);
}

}  // namespace
}  // namespace segqat::data
