#include "job/job_spec.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace segqat::job {

absl::StatusOr<JobRequest> FromSpec(const v1::JobSpec& spec) {
  JobRequest r;
  switch (spec.kind()) {
    case v1::TRAIN:
      r.kind = JobKind::kTrain;
      break;
    case v1::QUANT_TRAIN:
      r.kind = JobKind::kQuantTrain;
      break;
    case v1::EVAL:
      r.kind = JobKind::kEval;
      break;
    case v1::EXPORT:
      r.kind = JobKind::kExport;
      break;
    case v1::PTQ:
      r.kind = JobKind::kPtq;
      break;
    case v1::SENSITIVITY:
      r.kind = JobKind::kSensitivity;
      break;
    case v1::DIFF:
      r.kind = JobKind::kDiff;
      break;
    case v1::JOB_KIND_UNSPECIFIED:
      return absl::InvalidArgumentError("spec.kind: required");
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("spec.kind: unknown kind ", static_cast<int>(spec.kind())));
  }
  if (spec.gpus() < 0 || spec.gpus() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.gpus: a job runs on 0 or 1 GPU for now, got ", spec.gpus()));
  }
  if (spec.workers() < 0 || spec.workers() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.workers: 0 to 64 data-parallel ranks, got ", spec.workers()));
  }
  if (spec.workers() > 1 && !Trains(r.kind)) {
    return absl::InvalidArgumentError("spec.workers: only training runs data-parallel");
  }
  if (spec.log_steps() < 0) {
    return absl::InvalidArgumentError("spec.log_steps: must not be negative");
  }
  if (spec.calib_batches() < 0) {
    return absl::InvalidArgumentError("spec.calib_batches: must not be negative");
  }
  if (spec.calib_batches() != 0 && !Calibrates(r.kind)) {
    return absl::InvalidArgumentError("calib: only PTQ and SENSITIVITY jobs calibrate");
  }
  if (spec.has_drop_budget() && r.kind != JobKind::kSensitivity) {
    return absl::InvalidArgumentError("spec.drop_budget: only SENSITIVITY jobs take a budget");
  }
  if (spec.diff_images() < 0) {
    return absl::InvalidArgumentError("spec.diff_images: must not be negative");
  }
  if (spec.diff_images() != 0 && r.kind != JobKind::kDiff) {
    return absl::InvalidArgumentError("diff_images: only DIFF jobs take an image count");
  }
  r.config_yaml = spec.config_yaml();
  r.config_path = spec.config_path();
  r.overrides.assign(spec.overrides().begin(), spec.overrides().end());
  r.not_quant_pattern.assign(spec.not_quant_pattern().begin(), spec.not_quant_pattern().end());
  r.do_eval = spec.do_eval();
  r.convert = spec.convert();
  if (spec.log_steps() > 0) r.log_steps = spec.log_steps();
  r.calib = spec.calib();
  if (spec.calib_batches() > 0) r.calib_batches = spec.calib_batches();
  if (spec.has_drop_budget()) r.drop_budget = spec.drop_budget().value();
  if (spec.diff_images() > 0) r.diff_images = spec.diff_images();
  return r;
}

int GpusNeeded(const v1::JobSpec& spec) { return std::max(spec.gpus(), spec.use_gpu() ? 1 : 0); }

v1::JobKind ToProto(JobKind kind) {
  switch (kind) {
    case JobKind::kTrain:
      return v1::TRAIN;
    case JobKind::kQuantTrain:
      return v1::QUANT_TRAIN;
    case JobKind::kEval:
      return v1::EVAL;
    case JobKind::kExport:
      return v1::EXPORT;
    case JobKind::kPtq:
      return v1::PTQ;
    case JobKind::kSensitivity:
      return v1::SENSITIVITY;
    case JobKind::kDiff:
      return v1::DIFF;
  }
  return v1::JOB_KIND_UNSPECIFIED;
}

v1::JobSpec ToSpec(const JobRequest& request) {
  v1::JobSpec spec;
  spec.set_kind(ToProto(request.kind));
  spec.set_config_yaml(request.config_yaml);
  spec.set_config_path(request.config_path);
  for (const std::string& o : request.overrides) spec.add_overrides(o);
  for (const std::string& p : request.not_quant_pattern) spec.add_not_quant_pattern(p);
  spec.set_do_eval(request.do_eval);
  spec.set_convert(request.convert);
  spec.set_use_gpu(request.use_gpu);
  if (request.log_steps != kDefaultLogSteps) spec.set_log_steps(request.log_steps);
  spec.set_calib(request.calib);
  if (request.calib_batches != kDefaultCalibBatches) spec.set_calib_batches(request.calib_batches);
  if (request.drop_budget != kDefaultDropBudget) {
    spec.mutable_drop_budget()->set_value(request.drop_budget);
  }
  if (request.diff_images != kDefaultDiffImages) spec.set_diff_images(request.diff_images);
  return spec;
}

absl::StatusOr<Config> CheckSpec(const v1::JobSpec& spec) {
  auto request = FromSpec(spec);
  if (!request.ok()) return request.status();
  auto cfg = AssembleConfig(*request);
  if (!cfg.ok()) return cfg.status();
  if (auto st = CheckJob(*request, *cfg); !st.ok()) return st;
  return cfg;
}

}  // namespace segqat::job
