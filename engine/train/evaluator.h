// Evaluation over a split: the model in eval mode, images padded to
// EVAL_CROP_SIZE, argmax predictions against labels in a confusion matrix.
#ifndef SEGQAT_ENGINE_TRAIN_EVALUATOR_H_
#define SEGQAT_ENGINE_TRAIN_EVALUATOR_H_

#include <c10/core/Device.h>

#include <atomic>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/data/sample.h"
#include "engine/models/deeplab.h"
#include "engine/train/metrics.h"

namespace segqat {

// Restores the model's training mode afterwards. Cancelled when *stop
// becomes true. Errors name the image that failed to load.
// Logits (N x C x H x W, any device) for a batch of normalized images on the CPU.
using ForwardFn = std::function<absl::StatusOr<at::Tensor>(const at::Tensor& images)>;

// Evaluates any forward pass, e.g. the INT8 engine's.
absl::StatusOr<SegMetrics> Evaluate(const ForwardFn& forward, const Config& cfg,
                                    const std::vector<data::ListEntry>& entries,
                                    const std::atomic<bool>* stop = nullptr);

absl::StatusOr<SegMetrics> Evaluate(models::DeepLabV3Plus& model, const Config& cfg,
                                    const std::vector<data::ListEntry>& entries, c10::Device device,
                                    const std::atomic<bool>* stop = nullptr);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_EVALUATOR_H_
