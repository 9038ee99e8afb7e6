// Training as PaddleSeg's train.py / slim/quantization/train_quant.py do it:
// float training (the base model) or quant-aware training (--quant), SGD
// with momentum, a per-step learning-rate policy, cross-entropy that skips
// DATASET.IGNORE_INDEX, snapshots every TRAIN.SNAPSHOT_EPOCH epochs under
// TRAIN.MODEL_SAVE_DIR/<epoch>, best_model by mIoU with do_eval, and final.
// TRAIN.RESUME_MODEL_DIR resumes exactly where a snapshot left off (model,
// momentum, quantizer state, epoch and step, even mid-epoch for an
// interrupted run); TRAIN.PRETRAINED_MODEL_DIR starts from float weights.
#ifndef SEGQAT_ENGINE_TRAIN_TRAINER_H_
#define SEGQAT_ENGINE_TRAIN_TRAINER_H_

#include <c10/core/Device.h>

#include <atomic>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/train/collectives.h"
#include "engine/train/progress.h"
#include "job/job_request.h"

namespace segqat {

struct DatasetLists;  // engine/train/dataset.h

struct TrainOptions {
  bool quant = false;    // --quant: quant_aware with the SLIM.* config
  bool do_eval = false;  // evaluate each snapshot, keep best_model
  int log_steps = job::kDefaultLogSteps;
  c10::Device device = c10::Device(c10::kCPU);
  // When it becomes true, training stops between steps, saves the snapshot
  // "interrupted" (resumable) and returns with interrupted set.
  const std::atomic<bool>* stop = nullptr;
  // Data-parallel training (null: a world of one). BATCH_SIZE is the global
  // batch: each rank trains on its slice of every global batch, gradients
  // are averaged across ranks, rank 0's initial weights are broadcast, BN
  // statistics and quantizer ranges are averaged before each snapshot, a
  // stop on any rank stops all of them at the same step, and only rank 0
  // evaluates, writes snapshots and reports progress.
  Collectives* collectives = nullptr;
  // The file lists the job was checked with (null: read them here).
  const DatasetLists* lists = nullptr;
};

struct TrainResult {
  int64_t epochs_completed = 0;
  int64_t steps_completed = 0;
  bool interrupted = false;
  std::optional<double> best_miou;
  std::optional<double> last_miou;
  std::string final_dir;  // the last checkpoint written
};

// A warning for a training from scratch whose batch norms average their
// statistics over more than a fifth of its steps (MODEL.BN_MOMENTUM, the
// PaddleSeg convention: about 1 / (1 - momentum) steps), or "".
std::string BatchNormMomentumWarning(const Config& cfg, int64_t total_steps);

// Errors: InvalidArgument/NotFound for bad config, data or checkpoints (the
// message names the key or file); Internal for failures inside LibTorch.
absl::StatusOr<TrainResult> Train(const Config& cfg, const TrainOptions& options,
                                  ProgressSink* sink);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_TRAINER_H_
