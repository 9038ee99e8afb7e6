// The job as every entry point states it: `segqat` and MLOps pipelines (as a
// JobSpec, job/job_spec.h), segqatd (which checks it), the worker agent and
// `segqat-worker` (which run it on the engine). Its kind, its config and the
// flags it runs with, their defaults (declared here and nowhere else), how
// its config is assembled, and every rule that needs no filesystem.
// No LibTorch, no RPC: the engine's runtime::JobRequest extends this one.
#ifndef SEGQAT_JOB_JOB_REQUEST_H_
#define SEGQAT_JOB_JOB_REQUEST_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/config/config.h"

namespace segqat::job {

enum class JobKind { kTrain, kQuantTrain, kEval, kExport, kPtq, kSensitivity, kDiff };

// What a job runs with when its request leaves a value unset.
inline constexpr int kDefaultLogSteps = 10;        // a loss event every N steps
inline constexpr int kDefaultCalibBatches = 10;    // BATCH_SIZE batches PTQ and the scan see
inline constexpr double kDefaultDropBudget = 0.5;  // mIoU points the scan's pattern may lose
inline constexpr int kDefaultDiffImages = 16;      // val images the diff compares

struct JobRequest {
  JobKind kind = JobKind::kTrain;
  std::string config_yaml;             // the config file's text
  std::string config_path;             // where it was read, for messages ("" if unknown)
  std::vector<std::string> overrides;  // KEY VALUE ...
  std::vector<std::string> not_quant_pattern;
  bool do_eval = false;
  bool convert = false;
  bool use_gpu = false;
  int gpu_index = 0;  // the CUDA ordinal, with use_gpu
  int log_steps = kDefaultLogSteps;
  // PTQ and the sensitivity scan: the calibration method ("abs_max",
  // "percentile", "kl"; empty: abs_max) and how many BATCH_SIZE batches of
  // training images it sees.
  std::string calib;
  int calib_batches = kDefaultCalibBatches;
  double drop_budget = kDefaultDropBudget;  // the scan only
  int diff_images = kDefaultDiffImages;     // the diff only
};

bool Trains(JobKind kind);      // TRAIN and QUANT_TRAIN
bool Calibrates(JobKind kind);  // PTQ and SENSITIVITY

// The job's config: config_yaml, then the overrides, then not_quant_pattern
// as SLIM.not_quant_pattern. Errors name the key (engine/config/config.h),
// and the config file when config_path is known.
absl::StatusOr<Config> AssembleConfig(const JobRequest& request);

// Every rule on a job that needs no filesystem, on its request and its
// assembled config: InvalidArgument naming the setting. segqatd applies them
// at CreateJob, the worker before it runs a job, segqat-worker before it runs
// a command: one job is refused the same way on every path.
absl::Status CheckJob(const JobRequest& request, const Config& cfg);

}  // namespace segqat::job

#endif  // SEGQAT_JOB_JOB_REQUEST_H_
