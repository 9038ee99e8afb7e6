// The bridge from config keys to the data layer: which images a split uses
// (a PaddleSeg file list, or the Cityscapes layout under DATASET.DATA_DIR
// when the list key is empty), the augmentation options, and batches as
// tensors.
#ifndef SEGQAT_WORKER_TRAIN_DATASET_H_
#define SEGQAT_WORKER_TRAIN_DATASET_H_

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/config/config.h"
#include "worker/data/loader.h"

namespace segqat {

enum class Split { kTrain, kVal, kTest };

// Errors name the config key that points at the missing list or folder.
absl::StatusOr<std::vector<data::ListEntry>> SplitEntries(const Config& cfg, Split split);

data::AugmentOptions AugmentFromConfig(const Config& cfg);
data::LoaderOptions LoaderFromConfig(const Config& cfg, data::LoaderMode mode);

// N x 3 x H x W float images and N x H x W int64 labels (copies).
at::Tensor BatchImages(const data::Batch& batch);
at::Tensor BatchLabels(const data::Batch& batch);

}  // namespace segqat

#endif  // SEGQAT_WORKER_TRAIN_DATASET_H_
