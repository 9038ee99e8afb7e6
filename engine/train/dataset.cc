#include "engine/train/dataset.h"

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "engine/data/file_list.h"

namespace segqat {

namespace {

const char* ListKey(Split split) {
  return split == Split::kTrain ? "DATASET.TRAIN_FILE_LIST"
         : split == Split::kVal ? "DATASET.VAL_FILE_LIST"
                                : "DATASET.TEST_FILE_LIST";
}

}  // namespace

absl::StatusOr<std::vector<data::ListEntry>> DatasetLists::ReadAndKeep(const Config& cfg,
                                                                       Split split) {
  auto entries = SplitEntries(cfg, split);
  if (!entries.ok()) return entries;
  splits[split] = Read{cfg.Str(ListKey(split)), cfg.Str("DATASET.DATA_DIR"),
                       cfg.Str("DATASET.SEPARATOR"), *entries};
  return entries;
}

absl::StatusOr<std::vector<data::ListEntry>> SplitEntries(const Config& cfg, Split split,
                                                          const DatasetLists* checked) {
  const char* key = ListKey(split);
  const std::string& list = cfg.Str(key);
  const std::string& root = cfg.Str("DATASET.DATA_DIR");
  if (checked != nullptr) {
    auto it = checked->splits.find(split);
    if (it != checked->splits.end() && it->second.list == list && it->second.data_dir == root &&
        it->second.separator == cfg.Str("DATASET.SEPARATOR")) {
      return it->second.entries;
    }
  }
  absl::StatusOr<std::vector<data::ListEntry>> entries =
      list.empty() ? data::ScanCityscapes(root, split == Split::kTrain ? "train"
                                                : split == Split::kVal ? "val"
                                                                       : "test")
                   : data::ReadFileList(list, root, cfg.Str("DATASET.SEPARATOR"));
  if (!entries.ok()) {
    return absl::Status(
        entries.status().code(),
        absl::StrCat(list.empty() ? "DATASET.DATA_DIR" : key, ": ", entries.status().message()));
  }
  if (entries->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": no images in ", list.empty() ? root : list));
  }
  return entries;
}

data::AugmentOptions AugmentFromConfig(const Config& cfg) {
  data::AugmentOptions a;
  const std::string& method = cfg.Str("AUG.AUG_METHOD");
  a.method = method == "unpadding"      ? data::AugMethod::kUnpadding
             : method == "rangescaling" ? data::AugMethod::kRangeScaling
                                        : data::AugMethod::kStepScaling;
  auto size = [&](const char* key) {
    const auto& v = cfg.Ints(key);
    return cv::Size(static_cast<int>(v[0]), static_cast<int>(v[1]));
  };
  a.train_crop = size("TRAIN_CROP_SIZE");
  a.eval_crop = size("EVAL_CROP_SIZE");
  a.fix_resize = size("AUG.FIX_RESIZE_SIZE");
  a.inf_resize_value = static_cast<int>(cfg.Int("AUG.INF_RESIZE_VALUE"));
  a.max_resize_value = static_cast<int>(cfg.Int("AUG.MAX_RESIZE_VALUE"));
  a.min_resize_value = static_cast<int>(cfg.Int("AUG.MIN_RESIZE_VALUE"));
  a.min_scale = cfg.Float("AUG.MIN_SCALE_FACTOR");
  a.max_scale = cfg.Float("AUG.MAX_SCALE_FACTOR");
  a.scale_step = cfg.Float("AUG.SCALE_STEP_SIZE");
  a.mirror = cfg.Bool("AUG.MIRROR");
  a.flip = cfg.Bool("AUG.FLIP");
  a.flip_ratio = cfg.Float("AUG.FLIP_RATIO");
  const auto& pad = cfg.Floats("DATASET.PADDING_VALUE");
  a.padding_value = cv::Scalar(pad[0], pad[1], pad[2]);
  a.ignore_index = static_cast<int>(cfg.Int("DATASET.IGNORE_INDEX"));
  for (int c = 0; c < 3; ++c) {
    a.mean[c] = static_cast<float>(cfg.Floats("MEAN")[c]);
    a.std[c] = static_cast<float>(cfg.Floats("STD")[c]);
  }
  return a;
}

data::LoaderOptions LoaderFromConfig(const Config& cfg, data::LoaderMode mode) {
  data::LoaderOptions o;
  o.mode = mode;
  o.batch_size = static_cast<int>(cfg.Int("BATCH_SIZE"));
  o.shuffle = mode == data::LoaderMode::kTrain;
  o.drop_last = mode == data::LoaderMode::kTrain;
  o.seed = static_cast<uint64_t>(cfg.Int("TRAIN.SEED"));
  o.num_workers = static_cast<int>(cfg.Int("DATALOADER.NUM_WORKERS"));
  o.prefetch_batches = static_cast<int>(cfg.Int("DATALOADER.BUF_SIZE"));
  o.num_classes = static_cast<int>(cfg.Int("DATASET.NUM_CLASSES"));
  o.augment = AugmentFromConfig(cfg);
  return o;
}

at::Tensor BatchImages(const data::Batch& b) {
  return at::from_blob(const_cast<float*>(b.images.data()), {b.n, 3, b.height, b.width},
                       at::TensorOptions().dtype(at::kFloat))
      .clone();
}

at::Tensor BatchLabels(const data::Batch& b) {
  return at::from_blob(const_cast<uint8_t*>(b.labels.data()), {b.n, b.height, b.width},
                       at::TensorOptions().dtype(at::kByte))
      .to(at::kLong);
}

}  // namespace segqat
