// deploy.yaml, as PaddleSeg's export writes it (a DEPLOY section: model
// file, EVAL_CROP_SIZE, MEAN, STD, NUM_CLASSES, ...) plus what segqat's
// exports add: the ONNX file, the tensor names, whether the model normalizes
// raw RGB itself, whether it is quantized, and the class names.
#ifndef SEGQAT_ENGINE_EXPORT_DEPLOY_CONFIG_H_
#define SEGQAT_ENGINE_EXPORT_DEPLOY_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"

namespace segqat::exports {

struct DeployConfig {
  std::string model_filename = "model.ts";
  std::string onnx_filename = "model.onnx";
  int64_t width = 0, height = 0;  // EVAL_CROP_SIZE: the input size
  std::vector<double> mean, std;
  int64_t num_classes = 0;
  bool preprocess_in_model = false;  // image is raw 0-255 RGB
  bool quantized = false;
  std::vector<std::string> class_names;

  static DeployConfig FromConfig(const Config& cfg, bool quantized);
  std::string ToYaml() const;
  // InvalidArgument naming the file and key for a corrupt or foreign file.
  static absl::StatusOr<DeployConfig> Load(const std::string& path);
};

}  // namespace segqat::exports

#endif  // SEGQAT_ENGINE_EXPORT_DEPLOY_CONFIG_H_
