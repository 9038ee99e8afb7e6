#include "job/job_request.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/quote.h"

namespace segqat::job {

bool Trains(JobKind kind) { return kind == JobKind::kTrain || kind == JobKind::kQuantTrain; }

bool Calibrates(JobKind kind) { return kind == JobKind::kPtq || kind == JobKind::kSensitivity; }

absl::StatusOr<Config> AssembleConfig(const JobRequest& request) {
  std::vector<std::string> overrides = request.overrides;
  if (!request.not_quant_pattern.empty()) {
    overrides.push_back("SLIM.not_quant_pattern");
    overrides.push_back(absl::StrCat("[", absl::StrJoin(request.not_quant_pattern, ","), "]"));
  }
  auto cfg = Config::FromYamlText(request.config_yaml, overrides);
  if (!cfg.ok() && !request.config_path.empty()) {
    return absl::Status(cfg.status().code(),
                        absl::StrCat(cfg.status().message(), " (in ", request.config_path, ")"));
  }
  return cfg;
}

absl::Status CheckJob(const JobRequest& request, const Config& cfg) {
  if (request.log_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_steps: expects a number >= 1, got ", request.log_steps));
  }
  if (request.gpu_index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpu: expects a CUDA ordinal >= 0, got ", request.gpu_index));
  }
  if (!request.calib.empty() && request.calib != "abs_max" && request.calib != "percentile" &&
      request.calib != "kl") {
    return absl::InvalidArgumentError(absl::StrCat("calib: ", QuoteForMessage(request.calib),
                                                   " is not one of abs_max, percentile, kl"));
  }
  if (!request.calib.empty() && !Calibrates(request.kind)) {
    return absl::InvalidArgumentError("calib: only PTQ and SENSITIVITY jobs calibrate");
  }
  if (request.calib_batches < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("calib_batches: expects a number >= 1, got ", request.calib_batches));
  }
  if (!(request.drop_budget >= 0) || !std::isfinite(request.drop_budget)) {
    return absl::InvalidArgumentError("drop_budget: expects mIoU points >= 0 (e.g. 0.5)");
  }
  if (request.diff_images < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("diff_images: expects a number >= 1, got ", request.diff_images));
  }
  if (request.diff_images != kDefaultDiffImages && request.kind != JobKind::kDiff) {
    return absl::InvalidArgumentError("diff_images: only DIFF jobs take an image count");
  }
  if (request.kind == JobKind::kDiff && request.use_gpu) {
    return absl::InvalidArgumentError(
        "use_gpu: the diff runs the INT8 engine, which runs on the CPU");
  }
  switch (request.kind) {
    case JobKind::kEval:
    case JobKind::kExport:
    case JobKind::kSensitivity:
    case JobKind::kDiff:
      if (cfg.Str("TEST.TEST_MODEL").empty()) {
        const char* what = request.kind == JobKind::kEval     ? "evaluate"
                           : request.kind == JobKind::kExport ? "export"
                           : request.kind == JobKind::kDiff   ? "diff"
                                                              : "scan";
        return absl::InvalidArgumentError(
            absl::StrCat("TEST.TEST_MODEL: the checkpoint to ", what, " is required"));
      }
      break;
    case JobKind::kPtq:
      if (cfg.Str("TRAIN.PRETRAINED_MODEL_DIR").empty()) {
        return absl::InvalidArgumentError(
            "TRAIN.PRETRAINED_MODEL_DIR: the float checkpoint to quantize is required");
      }
      break;
    case JobKind::kTrain:
    case JobKind::kQuantTrain:
      break;
  }
  return absl::OkStatus();
}

}  // namespace segqat::job
