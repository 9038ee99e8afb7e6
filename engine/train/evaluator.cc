#include "engine/train/evaluator.h"

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "engine/data/loader.h"
#include "engine/train/dataset.h"

namespace segqat {

absl::StatusOr<SegMetrics> Evaluate(const ForwardFn& forward, const Config& cfg,
                                    const std::vector<data::ListEntry>& entries,
                                    const std::atomic<bool>* stop) {
  const int ignore = static_cast<int>(cfg.Int("DATASET.IGNORE_INDEX"));
  ConfusionMatrix cm(static_cast<int>(cfg.Int("DATASET.NUM_CLASSES")));
  data::BatchLoader loader(entries, LoaderFromConfig(cfg, data::LoaderMode::kEval), /*epoch=*/0);
  try {
    at::NoGradGuard no_grad;
    while (true) {
      if (stop != nullptr && stop->load()) return absl::CancelledError("evaluation cancelled");
      auto batch = loader.Next();
      if (!batch.ok()) return batch.status();
      if (!batch->has_value()) break;
      const data::Batch& b = **batch;
      auto logits = forward(BatchImages(b));
      if (!logits.ok()) return logits.status();
      at::Tensor pred = logits->argmax(1).to(at::kCPU, at::kLong).contiguous();
      cm.Add(b.labels.data(), pred.data_ptr<int64_t>(), pred.numel(), ignore);
      cm.AddImages(b.n);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("evaluation failed: ", e.what_without_backtrace()));
  }
  return cm.Compute();
}

absl::StatusOr<SegMetrics> Evaluate(models::DeepLabV3Plus& model, const Config& cfg,
                                    const std::vector<data::ListEntry>& entries, c10::Device device,
                                    const std::atomic<bool>* stop) {
  const bool was_training = model->is_training();
  model->eval();
  auto metrics = Evaluate(
      [&](const at::Tensor& images) -> absl::StatusOr<at::Tensor> {
        return model->forward(images.to(device));
      },
      cfg, entries, stop);
  if (was_training) model->train();
  return metrics;
}

}  // namespace segqat
