// Builds the network a checkpoint holds, as it was trained: the architecture
// from the config (which must agree with the checkpoint's), quant_aware with
// the checkpoint's own SLIM config when it was trained quantized, then the
// weights and quantizer state.
#ifndef SEGQAT_ENGINE_TRAIN_MODEL_LOADER_H_
#define SEGQAT_ENGINE_TRAIN_MODEL_LOADER_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/models/deeplab.h"
#include "engine/train/checkpoint.h"

namespace segqat {

struct LoadedModel {
  models::DeepLabV3Plus model{nullptr};
  Checkpoint checkpoint;
};

// `key` names the config key the directory came from, for error messages.
// With convert, a quantized checkpoint is converted to int8 (an error for a
// float checkpoint). The model is returned in eval mode on the CPU.
absl::StatusOr<LoadedModel> LoadCheckpointModel(const Config& cfg, const std::string& key,
                                                const std::string& dir, bool convert);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_MODEL_LOADER_H_
