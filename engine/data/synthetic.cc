#include "engine/data/synthetic.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/street_scene.h"

namespace segqat::data {
namespace {

namespace fs = std::filesystem;

// Train ids that not every scene has; scene k is required to show kRare[k % 8].
constexpr std::array<uint8_t, 8> kRare = {
    cityscapes::kWall, cityscapes::kFence, cityscapes::kRider,      cityscapes::kTruck,
    cityscapes::kBus,  cityscapes::kTrain, cityscapes::kMotorcycle, cityscapes::kBicycle};

struct Split {
  const char* name;
  int images;
  std::vector<const char*> cities;  // sorted, so paths sort in scene order
};

absl::Status WriteFileAtomically(const fs::path& path, const void* data, size_t size) {
  const fs::path temp = fs::path(path.string() + ".tmp");
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::InternalError(
          absl::StrCat("cannot create ", temp.string(), ": ", std::strerror(errno)));
    }
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temp.string()));
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", temp.string(), " to ", path.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

// PNG with fixed settings, so the bytes do not depend on OpenCV's defaults.
absl::Status WritePng(const fs::path& path, const cv::Mat& mat, int compression) {
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", mat, bytes, {cv::IMWRITE_PNG_COMPRESSION, compression})) {
    return absl::InternalError(absl::StrCat("cannot encode ", path.string()));
  }
  return WriteFileAtomically(path, bytes.data(), bytes.size());
}

absl::Status CreateDirectories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteSplit(const SyntheticOptions& options, const Split& split, uint64_t split_id) {
  const fs::path root(options.out_dir);
  const std::array<uint8_t, 256> to_label_ids = cityscapes::TrainIdToLabelIdLut();
  const cv::Mat lut(1, 256, CV_8UC1, const_cast<uint8_t*>(to_label_ids.data()));
  const int cities = static_cast<int>(split.cities.size());
  std::string list;
  for (int k = 0; k < split.images; ++k) {
    const char* city = split.cities[static_cast<int64_t>(k) * cities / split.images];
    const std::string stem = absl::StrCat(city, "_", absl::Dec(k, absl::kZeroPad6), "_000019");
    const std::string image_rel =
        absl::StrCat("leftImg8bit/", split.name, "/", city, "/", stem, "_leftImg8bit.png");
    const std::string label_dir = absl::StrCat("gtFine/", split.name, "/", city, "/");
    const std::string train_ids_rel = label_dir + stem + "_gtFine_labelTrainIds.png";
    const std::string label_ids_rel = label_dir + stem + "_gtFine_labelIds.png";

    const StreetScene scene = RenderStreetScene(
        cv::Size(options.width, options.height),
        MixSeed(options.seed, split_id, static_cast<uint64_t>(k)), {kRare[k % kRare.size()]});
    cv::Mat bgr, label_ids;
    cv::cvtColor(scene.image, bgr, cv::COLOR_RGB2BGR);
    cv::LUT(scene.label, lut, label_ids);
    // Images compress poorly (noise): the fastest zlib level; labels compress well.
    const std::array<std::pair<const std::string*, const cv::Mat*>, 3> files = {
        {{&image_rel, &bgr}, {&train_ids_rel, &scene.label}, {&label_ids_rel, &label_ids}}};
    for (const auto& [rel, mat] : files) {
      const fs::path path = root / *rel;
      if (absl::Status s = CreateDirectories(path.parent_path()); !s.ok()) return s;
      if (absl::Status s = WritePng(path, *mat, mat->channels() == 3 ? 1 : 6); !s.ok()) return s;
    }
    absl::StrAppend(&list, image_rel, " ", train_ids_rel, "\n");
  }
  return WriteFileAtomically(root / absl::StrCat(split.name, "_list.txt"), list.data(),
                             list.size());
}

}  // namespace

absl::Status MakeSyntheticDataset(const SyntheticOptions& options) {
  if (options.out_dir.empty()) return absl::InvalidArgumentError("out_dir is empty");
  if (options.train_images < 0 || options.val_images < 0) {
    return absl::InvalidArgumentError(absl::StrCat("image counts must be >= 0, got train ",
                                                   options.train_images, ", val ",
                                                   options.val_images));
  }
  if (options.width < 32 || options.height < 16 || options.width > 8192 || options.height > 8192) {
    return absl::InvalidArgumentError(absl::StrCat("image size must be at least 32x16 and at most ",
                                                   "8192x8192, got ", options.width, "x",
                                                   options.height));
  }
  if (absl::Status s = CreateDirectories(options.out_dir); !s.ok()) return s;
  const Split train{"train", options.train_images, {"aachen", "bochum", "bremen", "cologne"}};
  const Split val{"val", options.val_images, {"frankfurt", "lindau", "munster"}};
  try {
    if (absl::Status s = WriteSplit(options, train, 0); !s.ok()) return s;
    return WriteSplit(options, val, 1);
  } catch (const cv::Exception& e) {
    return absl::InternalError(
        absl::StrCat("synthetic dataset in ", options.out_dir, ": ", e.what()));
  }
}

}  // namespace segqat::data
