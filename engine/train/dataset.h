// The bridge from config keys to the data layer: which images a split uses
// (a PaddleSeg file list, or the Cityscapes layout under DATASET.DATA_DIR
// when the list key is empty), the augmentation options, and batches as
// tensors.
#ifndef SEGQAT_ENGINE_TRAIN_DATASET_H_
#define SEGQAT_ENGINE_TRAIN_DATASET_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/data/loader.h"

namespace segqat {

enum class Split { kTrain, kVal, kTest };

// The splits a job was checked with: BuildJobConfig reads each list once and
// checks its entries; the job then uses those entries instead of reading the
// list again, so that what was checked is what is used (a list swapped in
// between is never read).
struct DatasetLists {
  struct Read {
    std::string list, data_dir, separator;  // the config values it was read with
    std::vector<data::ListEntry> entries;
  };
  std::map<Split, Read> splits;

  // Reads the split (SplitEntries) and keeps it.
  absl::StatusOr<std::vector<data::ListEntry>> ReadAndKeep(const Config& cfg, Split split);
};

// Errors name the config key that points at the missing list or folder.
// With `checked`, a split it holds for cfg's current list, data dir and
// separator is returned as it was read; anything else is read now.
absl::StatusOr<std::vector<data::ListEntry>> SplitEntries(const Config& cfg, Split split,
                                                          const DatasetLists* checked = nullptr);

data::AugmentOptions AugmentFromConfig(const Config& cfg);
data::LoaderOptions LoaderFromConfig(const Config& cfg, data::LoaderMode mode);

// N x 3 x H x W float images and N x H x W int64 labels (copies).
at::Tensor BatchImages(const data::Batch& batch);
at::Tensor BatchLabels(const data::Batch& batch);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_DATASET_H_
