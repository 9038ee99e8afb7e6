#include "engine/data/image_io.h"

#include <array>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/data/cityscapes.h"
#include "engine/data/confined_read.h"

namespace segqat::data {
namespace {

constexpr absl::string_view kLabelIdsSuffix = "_labelIds.png";

// `shown` is how messages name the file (EntryName), never read from it.
absl::Status CheckFile(absl::string_view what, const std::string& path, const std::string& shown) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(what, " ", shown, " does not exist"));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", shown, " is not a regular file"));
  }
  return absl::OkStatus();
}

// PNG, JPEG or BMP, by their first bytes. OpenCV would otherwise offer a file
// to every decoder it was built with (DICOM, GDAL, OpenJPEG, ...), and some of
// those abort the process on crafted input (found by tests/fuzz/fuzz_image).
bool IsDatasetImage(const std::string& bytes) {
  return absl::StartsWith(bytes, "\x89PNG\r\n\x1a\n") || absl::StartsWith(bytes, "\xff\xd8\xff") ||
         absl::StartsWith(bytes, "BM");
}

absl::StatusOr<cv::Mat> ReadImage(absl::string_view what, const std::string& path,
                                  const std::string& shown, int flags) {
  if (absl::Status status = CheckFile(what, path, shown); !status.ok()) return status;
  absl::StatusOr<std::string> read = ReadJobFile(path, absl::StrCat(what, " ", shown));
  if (!read.ok()) return read.status();
  std::string& bytes = *read;
  if (!IsDatasetImage(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", shown, " is not a PNG, JPEG or BMP image"));
  }
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data());
  cv::Mat mat = cv::imdecode(buffer, flags);
  if (mat.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", shown, " cannot be decoded (corrupt or not an image)"));
  }
  return mat;
}

// Maps label ids to train ids in place.
void MapLabelIds(cv::Mat& label) {
  const std::array<uint8_t, 256> lut = cityscapes::LabelIdToTrainIdLut();
  const cv::Mat lut_mat(1, 256, CV_8UC1, const_cast<uint8_t*>(lut.data()));
  cv::LUT(label, lut_mat, label);
}

absl::Status CheckLabelValues(const cv::Mat& label, const std::string& path, int num_classes,
                              int ignore_index) {
  std::array<bool, 256> allowed{};
  for (int v = 0; v < 256; ++v) allowed[v] = v < num_classes || v == ignore_index;
  for (int y = 0; y < label.rows; ++y) {
    const uint8_t* row = label.ptr<uint8_t>(y);
    for (int x = 0; x < label.cols; ++x) {
      if (!allowed[row[x]]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "label ", path, " has value ", static_cast<int>(row[x]), " at (x=", x, ", y=", y,
            "), which is >= NUM_CLASSES ", num_classes, " and is not IGNORE_INDEX ", ignore_index));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Sample> LoadSampleOrThrow(const ListEntry& entry, int num_classes,
                                         int ignore_index) {
  absl::StatusOr<cv::Mat> bgr =
      ReadImage("image", entry.image_path, EntryName(entry), cv::IMREAD_COLOR);
  if (!bgr.ok()) return bgr.status();
  Sample sample;
  sample.image_path = EntryName(entry);
  cv::cvtColor(*bgr, sample.image, cv::COLOR_BGR2RGB);

  if (entry.label_path.empty()) {
    sample.label = cv::Mat(sample.image.size(), CV_8UC1, cv::Scalar(ignore_index));
    return sample;
  }
  absl::StatusOr<cv::Mat> label =
      ReadImage("label", entry.label_path, EntryName(entry, true), cv::IMREAD_UNCHANGED);
  if (!label.ok()) return label.status();
  if (label->type() != CV_8UC1) {
    return absl::InvalidArgumentError(
        absl::StrCat("label ", EntryName(entry, true), " must be single-channel 8-bit, got ",
                     label->channels(), " channel(s) of ", label->elemSize1() * 8, "-bit values"));
  }
  if (label->size() != sample.image.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image ", EntryName(entry), " is ", sample.image.cols, "x", sample.image.rows,
                     " but label ", EntryName(entry, true), " is ", label->cols, "x", label->rows));
  }
  if (absl::EndsWith(entry.label_path, kLabelIdsSuffix)) MapLabelIds(*label);
  if (absl::Status status =
          CheckLabelValues(*label, EntryName(entry, true), num_classes, ignore_index);
      !status.ok()) {
    return status;
  }
  sample.label = *std::move(label);
  return sample;
}

}  // namespace

absl::StatusOr<Sample> LoadSample(const ListEntry& entry, int num_classes, int ignore_index) {
  if (num_classes < 1 || num_classes > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("NUM_CLASSES must be in [1, 256], got ", num_classes));
  }
  if (ignore_index < 0 || ignore_index > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("IGNORE_INDEX must be in [0, 255], got ", ignore_index));
  }
  try {
    return LoadSampleOrThrow(entry, num_classes, ignore_index);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("decoding ", EntryName(entry), ": ", e.what()));
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("decoding ", EntryName(entry), ": ", e.what()));
  }
}

}  // namespace segqat::data
