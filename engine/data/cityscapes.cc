#include "engine/data/cityscapes.h"

namespace segqat::data::cityscapes {

std::array<uint8_t, 256> LabelIdToTrainIdLut() {
  std::array<uint8_t, 256> lut;
  lut.fill(kIgnoreTrainId);
  for (int train_id = 0; train_id < kNumClasses; ++train_id) {
    lut[kTrainIdToLabelId[train_id]] = static_cast<uint8_t>(train_id);
  }
  return lut;
}

std::array<uint8_t, 256> TrainIdToLabelIdLut() {
  std::array<uint8_t, 256> lut;
  lut.fill(kUnlabeledLabelId);
  for (int train_id = 0; train_id < kNumClasses; ++train_id) {
    lut[train_id] = kTrainIdToLabelId[train_id];
  }
  return lut;
}

}  // namespace segqat::data::cityscapes
