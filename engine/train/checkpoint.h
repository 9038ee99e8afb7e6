// Checkpoints: one directory each (MODEL_SAVE_DIR/<epoch>, best_model, final):
//   model.pt        every parameter and buffer (quantizer state included) as
//                   a dict name -> tensor; PyTorch's torch.load opens it
//   optimizer.pt    momentum buffers, name -> tensor
//   config.yaml     the full config the model was built and trained with
//   checkpoint.yaml epoch, global step, whether quantized, mIoU if evaluated
// A directory is written under a temporary name and renamed into place, so a
// reader never sees half a checkpoint.
#ifndef SEGQAT_ENGINE_TRAIN_CHECKPOINT_H_
#define SEGQAT_ENGINE_TRAIN_CHECKPOINT_H_

#include <torch/nn/module.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/train/tensor_file.h"

namespace segqat {

struct CheckpointMeta {
  int64_t epoch = 0;       // epochs completed
  int64_t step = 0;        // global steps completed
  int64_t epoch_step = 0;  // steps completed within the next epoch (interrupted runs)
  bool quantized = false;
  std::optional<double> miou;
};

struct Checkpoint {
  CheckpointMeta meta;
  Config config;
  // What an older checkpoint lacks and how it is read instead, for the user.
  std::vector<std::string> notes;
};

// Writes dir atomically. optimizer may be empty.
absl::Status SaveCheckpoint(const std::string& dir, const torch::nn::Module& model,
                            const std::map<std::string, at::Tensor>& optimizer,
                            const CheckpointMeta& meta, const Config& config);

// Reads checkpoint.yaml and config.yaml. NotFound when dir has no checkpoint;
// InvalidArgument naming the file when it is corrupt.
absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& dir);
// ReadCheckpoint, and model.pt and optimizer.pt (if any) load: DataLoss for
// a torn file (a kill or a full disk mid-write).
absl::Status CheckCheckpointFiles(const std::string& dir);

// InvalidArgument listing every architecture key on which the checkpoint's
// config and `cfg` differ ("checkpoint DIR is another architecture: ...").
absl::Status CheckSameArchitecture(const std::string& dir, const Config& checkpoint_cfg,
                                   const Config& cfg);

// Loads model.pt into every parameter and buffer of the model; all must be
// present with equal shapes (InvalidArgument naming the first that is not).
absl::Status LoadModelState(const std::string& dir, torch::nn::Module& model);
absl::StatusOr<std::map<std::string, at::Tensor>> LoadOptimizerState(const std::string& dir);

struct PretrainedReport {
  std::string source;                // the file read
  std::vector<std::string> loaded;   // model names filled
  std::vector<std::string> skipped;  // source names not used (unknown or other shape)
  std::vector<std::string> missing;  // model names left as initialised
};

// Initialises the model from float weights, PaddleSeg-style: tensors whose
// name and shape match are copied, the rest reported. `path` is a segqat
// checkpoint directory, a PyTorch state-dict file (torch.save of a dict of
// tensors, e.g. torchvision's mobilenet_v2), or a directory holding exactly
// one .pt/.pth file. torchvision names ("features.N...") are accepted for the
// backbone ("backbone.features.N..."). InvalidArgument when nothing matches.
absl::StatusOr<PretrainedReport> LoadPretrained(const std::string& path, torch::nn::Module& model);

// The converted (INT8) form of a model, as deployed: for every converted
// layer its int8 weight codes ("<layer>.weight_int8"), per-output-channel
// weight scales ("<layer>.weight_scale", s_c with w = q * s_c / 127), its
// input activation scale ("<layer>.input_scale"), float bias, and with
// SLIM.fold_bn the BN factor folded into the codes ("<layer>.bn_scale":
// q * s_c / 127 = weight * bn_scale); every other
// parameter and buffer (BN, layers kept float) as it is. The float weights
// of converted layers and the training-only quantizer state are left out.
std::map<std::string, at::Tensor> ConvertedState(const torch::nn::Module& model);

// The model's parameters and buffers by qualified name.
std::map<std::string, at::Tensor> NamedState(const torch::nn::Module& model);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_CHECKPOINT_H_
