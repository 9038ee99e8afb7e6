// A model directory written by `segqat-worker export` (deploy.yaml +
// model.ts), loaded for inference on single images: what
// `segqat-worker predict` runs.
#ifndef SEGQAT_ENGINE_INFER_PREDICTOR_H_
#define SEGQAT_ENGINE_INFER_PREDICTOR_H_

#include <memory>
#include <opencv2/core/mat.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "engine/export/deploy_config.h"
#include "engine/infer/engine.h"

namespace segqat::infer {

enum class LabelFormat { kColor, kOverlay, kLabels };

class Predictor {
 public:
  // Errors name the directory and file: NotFound (no such directory, a file
  // missing), InvalidArgument (a corrupt or foreign deploy.yaml or model).
  static absl::StatusOr<Predictor> Load(const std::string& dir, Precision precision);

  // rgb: CV_8UC3, RGB order, of the model's input size (EVAL_CROP_SIZE);
  // returns CV_8UC1 train ids.
  absl::StatusOr<cv::Mat> Predict(const cv::Mat& rgb) const;

  const exports::DeployConfig& deploy() const { return deploy_; }
  Engine& engine() const { return *engine_; }

 private:
  std::string dir_;
  exports::DeployConfig deploy_;
  std::shared_ptr<Engine> engine_;
};

// The label map as PNG-ready pixels: Cityscapes colours (BGR for OpenCV),
// the colours blended half over the image, or the raw train ids.
cv::Mat RenderLabels(const cv::Mat& labels, const cv::Mat& rgb, LabelFormat format);

}  // namespace segqat::infer

#endif  // SEGQAT_ENGINE_INFER_PREDICTOR_H_
