#include "engine/infer/predictor.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "engine/data/cityscapes.h"
#include "engine/export/torchscript.h"

namespace segqat::infer {
namespace fs = std::filesystem;

absl::StatusOr<Predictor> Predictor::Load(const std::string& dir, Precision precision) {
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("model directory ", dir, " does not exist"));
  }
  const fs::path yaml = fs::path(dir) / "deploy.yaml";
  if (!fs::exists(yaml)) {
    return absl::NotFoundError(absl::StrCat(
        dir, " has no deploy.yaml: it is not a model directory written by segqat-worker export"));
  }
  Predictor p;
  p.dir_ = dir;
  auto deploy = exports::DeployConfig::Load(yaml.string());
  if (!deploy.ok()) return deploy.status();
  p.deploy_ = *std::move(deploy);
  auto graph = exports::ReadTorchScript((fs::path(dir) / p.deploy_.model_filename).string());
  if (!graph.ok()) return graph.status();
  if (graph->num_classes != p.deploy_.num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": deploy.yaml says NUM_CLASSES ", p.deploy_.num_classes, " but ",
                     p.deploy_.model_filename, " has ", graph->num_classes, " classes"));
  }
  const bool normalizes =
      !graph->nodes.empty() && graph->nodes.front().kind == exports::OpKind::kNormalize;
  if (normalizes != p.deploy_.preprocess_in_model) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, ": deploy.yaml PREPROCESS_IN_MODEL does not match ", p.deploy_.model_filename));
  }
  auto engine = Engine::Create(*std::move(graph), precision);
  if (!engine.ok()) return engine.status();
  p.engine_ = std::move(*engine);
  return p;
}

absl::StatusOr<cv::Mat> Predictor::Predict(const cv::Mat& rgb) const {
  if (rgb.type() != CV_8UC3) {
    return absl::InvalidArgumentError("the image must be 8-bit, 3 channels");
  }
  if (rgb.cols != deploy_.width || rgb.rows != deploy_.height) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the image is ", rgb.cols, "x", rgb.rows, " but the model in ", dir_, " takes ",
        deploy_.width, "x", deploy_.height, " (deploy.yaml EVAL_CROP_SIZE)"));
  }
  cv::Mat contiguous = rgb.isContinuous() ? rgb : rgb.clone();
  at::Tensor x = at::from_blob(contiguous.data, {1, rgb.rows, rgb.cols, 3}, at::kByte)
                     .permute({0, 3, 1, 2})
                     .to(at::kFloat);
  if (!deploy_.preprocess_in_model) {
    auto opts = at::TensorOptions().dtype(at::kDouble);
    at::Tensor mean = at::tensor(deploy_.mean, opts).to(at::kFloat).view({1, 3, 1, 1});
    at::Tensor std = at::tensor(deploy_.std, opts).to(at::kFloat).view({1, 3, 1, 1});
    x = (x / 255.0f - mean) / std;
  }
  auto logits = engine_->Run(x);
  if (!logits.ok()) return logits.status();
  at::Tensor labels = logits->argmax(1).squeeze(0).to(at::kByte).contiguous();
  cv::Mat out(rgb.rows, rgb.cols, CV_8UC1);
  std::memcpy(out.data, labels.data_ptr<uint8_t>(), labels.numel());
  return out;
}

cv::Mat RenderLabels(const cv::Mat& labels, const cv::Mat& rgb, LabelFormat format) {
  if (format == LabelFormat::kLabels) return labels.clone();
  cv::Mat color(labels.size(), CV_8UC3);
  for (int y = 0; y < labels.rows; ++y) {
    for (int x = 0; x < labels.cols; ++x) {
      const int id = labels.at<uint8_t>(y, x);
      cv::Vec3b bgr(0, 0, 0);
      if (id < data::cityscapes::kNumClasses) {
        const auto& c = data::cityscapes::kPalette[id];
        bgr = cv::Vec3b(c[2], c[1], c[0]);
      } else {  // classes beyond Cityscapes' 19: a fixed hash colour
        bgr = cv::Vec3b((id * 67) & 255, (id * 151) & 255, (id * 37) & 255);
      }
      color.at<cv::Vec3b>(y, x) = bgr;
    }
  }
  if (format == LabelFormat::kColor) return color;
  cv::Mat bgr_image, overlay;
  cv::cvtColor(rgb, bgr_image, cv::COLOR_RGB2BGR);
  cv::addWeighted(bgr_image, 0.5, color, 0.5, 0.0, overlay);
  return overlay;
}

}  // namespace segqat::infer
