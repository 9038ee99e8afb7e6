// A synthetic Cityscapes-like dataset for tests, demos and smoke training:
// street scenes (street_scene.h) written in the Cityscapes layout with
// PaddleSeg file lists, so every reader in this layer can consume it.
#ifndef SEGQAT_ENGINE_DATA_SYNTHETIC_H_
#define SEGQAT_ENGINE_DATA_SYNTHETIC_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace segqat::data {

struct SyntheticOptions {
  std::string out_dir;
  int train_images = 64;
  int val_images = 16;
  int height = 256;
  int width = 512;
  uint64_t seed = 1;
};

// Writes, for each split in {train, val}:
//   out_dir/leftImg8bit/<split>/<city>/<city>_<6 digits>_000019_leftImg8bit.png  (RGB scene)
//   out_dir/gtFine/<split>/<city>/<same stem>_gtFine_labelTrainIds.png           (train ids)
//   out_dir/gtFine/<split>/<city>/<same stem>_gtFine_labelIds.png                (label ids)
// and the file lists out_dir/train_list.txt and out_dir/val_list.txt, one
// "leftImg8bit/... gtFine/..._gtFine_labelTrainIds.png" line per image, in
// the order ScanCityscapes returns them. Image k of a split is the k-th
// scene of that split, so a larger count extends a smaller one.
//
// Every run with the same options writes byte-identical files. Each file is
// written under a temporary name ("<name>.tmp") and renamed into place, so
// readers never see a partial file; two generators must not share out_dir.
// Among any 8 consecutive images of a split each of the rarer classes (wall,
// fence, rider, truck, bus, train, motorcycle, bicycle) appears at least
// once, so 16 images cover all 19 classes.
//
// Errors: InvalidArgument for an empty out_dir, negative counts or a size
// below 32x16 (or above 8192 on a side); Internal naming the path when a
// folder or file cannot be written.
absl::Status MakeSyntheticDataset(const SyntheticOptions& options);

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_SYNTHETIC_H_
