#include "engine/export/deploy_config.h"

#include <yaml-cpp/yaml.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/data/cityscapes.h"

namespace segqat::exports {

DeployConfig DeployConfig::FromConfig(const Config& cfg, bool quantized) {
  DeployConfig d;
  d.width = cfg.Ints("EVAL_CROP_SIZE")[0];
  d.height = cfg.Ints("EVAL_CROP_SIZE")[1];
  d.mean = cfg.Floats("MEAN");
  d.std = cfg.Floats("STD");
  d.num_classes = cfg.Int("DATASET.NUM_CLASSES");
  d.preprocess_in_model = cfg.Bool("SLIM.PREPROCESS");
  d.quantized = quantized;
  for (int64_t c = 0; c < d.num_classes; ++c) {
    d.class_names.push_back(d.num_classes == data::cityscapes::kNumClasses
                                ? data::cityscapes::kClassNames[c]
                                : absl::StrCat("class_", c));
  }
  return d;
}

std::string DeployConfig::ToYaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "DEPLOY" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "USE_GPU" << YAML::Value << 0;
  out << YAML::Key << "MODEL_PATH" << YAML::Value << ".";
  out << YAML::Key << "MODEL_FILENAME" << YAML::Value << model_filename;
  out << YAML::Key << "ONNX_FILENAME" << YAML::Value << onnx_filename;
  out << YAML::Key << "EVAL_CROP_SIZE" << YAML::Value << YAML::Flow
      << std::vector<int64_t>{width, height};
  out << YAML::Key << "MEAN" << YAML::Value << YAML::Flow << mean;
  out << YAML::Key << "STD" << YAML::Value << YAML::Flow << std;
  out << YAML::Key << "IMAGE_TYPE" << YAML::Value << "rgb";
  out << YAML::Key << "NUM_CLASSES" << YAML::Value << num_classes;
  out << YAML::Key << "CHANNELS" << YAML::Value << 3;
  out << YAML::Key << "PRE_PROCESSOR" << YAML::Value << "SegPreProcessor";
  out << YAML::Key << "PREDICTOR_MODE" << YAML::Value << "ANALYSIS";
  out << YAML::Key << "BATCH_SIZE" << YAML::Value << 1;
  out << YAML::Key << "INPUT_NAME" << YAML::Value << "image";
  out << YAML::Key << "OUTPUT_NAME" << YAML::Value << "logits";
  out << YAML::Key << "PREPROCESS_IN_MODEL" << YAML::Value << preprocess_in_model;
  out << YAML::Key << "QUANTIZED" << YAML::Value << quantized;
  out << YAML::Key << "CLASS_NAMES" << YAML::Value << YAML::Flow << class_names;
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

absl::StatusOr<DeployConfig> DeployConfig::Load(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat(path, " is missing"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not YAML: ", e.what()));
  }
  const YAML::Node d = root["DEPLOY"];
  if (!d || !d.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no DEPLOY section"));
  }
  DeployConfig c;
  std::string key;
  try {
    key = "MODEL_FILENAME";
    c.model_filename = d[key].as<std::string>();
    key = "ONNX_FILENAME";
    c.onnx_filename = d[key].as<std::string>("model.onnx");
    key = "EVAL_CROP_SIZE";
    auto size = d[key].as<std::vector<int64_t>>();
    if (size.size() != 2 || size[0] < 1 || size[1] < 1)
      throw YAML::Exception(YAML::Mark::null_mark(), "not (w, h)");
    c.width = size[0];
    c.height = size[1];
    key = "MEAN";
    c.mean = d[key].as<std::vector<double>>();
    key = "STD";
    c.std = d[key].as<std::vector<double>>();
    if (c.mean.size() != 3 || c.std.size() != 3)
      throw YAML::Exception(YAML::Mark::null_mark(), "needs 3 values");
    key = "NUM_CLASSES";
    c.num_classes = d[key].as<int64_t>();
    key = "PREPROCESS_IN_MODEL";
    c.preprocess_in_model = d[key].as<bool>(false);
    key = "QUANTIZED";
    c.quantized = d[key].as<bool>(false);
    key = "CLASS_NAMES";
    if (d[key]) c.class_names = d[key].as<std::vector<std::string>>();
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": DEPLOY.", key, " is missing or malformed (", e.what(), ")"));
  }
  return c;
}

}  // namespace segqat::exports
