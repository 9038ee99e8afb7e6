// Runs one job on this process's engine: what `segqat-worker train/eval`
// do, driven by a job description instead of a command line. The server's
// embedded workers and a remote segqat-worker run the same code. No gRPC here.
#ifndef SEGQAT_WORKER_RUNTIME_JOB_RUNNER_H_
#define SEGQAT_WORKER_RUNTIME_JOB_RUNNER_H_

#include <c10/core/Device.h>

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/config/config.h"
#include "worker/data/sample.h"
#include "worker/train/metrics.h"
#include "worker/train/model_loader.h"
#include "worker/train/progress.h"

namespace segqat {
class Collectives;
}

namespace segqat::runtime {

enum class JobKind { kTrain, kQuantTrain, kEval, kExport };

struct JobRequest {
  JobKind kind = JobKind::kTrain;
  std::string config_yaml;
  std::vector<std::string> overrides;  // KEY VALUE ...
  std::vector<std::string> not_quant_pattern;
  bool do_eval = false;
  bool convert = false;
  bool use_gpu = false;
  int gpu_index = 0;  // the CUDA ordinal, with use_gpu
  int log_steps = 10;
  Collectives* collectives = nullptr;  // data-parallel training (worker/train/collectives.h)
};

// Maps the value of a path key that names another job's artifact
// ("jobs/ID/final") to the local directory holding it; values that are not
// references come back unchanged. Errors name the key.
using PathResolver =
    std::function<absl::StatusOr<std::string>(const std::string& key, const std::string& value)>;

// Builds the job's config: the YAML, then the overrides, then the flags
// (--not_quant_pattern), then `resolve` on ArtifactReferenceKeys() (may be
// empty). InvalidArgument naming the key for any config error; also checks
// that the dataset lists / folders and the checkpoint a job needs exist, so
// a bad job never reaches a worker.
absl::StatusOr<Config> BuildJobConfig(const JobRequest& request,
                                      const PathResolver& resolve = nullptr);


struct JobOutcome {
  bool interrupted = false;  // stopped by *stop; resumable from work_dir
  // Directories and files under work_dir worth keeping as artifacts, relative
  // to work_dir ("final", "best_model", "metrics.json", ...).
  std::vector<std::string> outputs;
};

// CPU, or CUDA device `gpu_index` with use_gpu (FailedPrecondition naming
// --use_gpu when this build or machine has no such device).
absl::StatusOr<c10::Device> PickDevice(bool use_gpu, int gpu_index = 0);

// Evaluates a loaded checkpoint on `entries`. A converted model on the CPU
// runs on the INT8 engine (worker/infer), as it is deployed; on a GPU, or
// unconverted, the model itself runs on `device`.
absl::StatusOr<SegMetrics> EvaluateLoaded(LoadedModel& loaded, const Config& cfg,
                                          const std::vector<segqat::data::ListEntry>& entries,
                                          c10::Device device, bool converted,
                                          const std::atomic<bool>* stop = nullptr);

// Runs the job with its snapshots under work_dir (TRAIN.MODEL_SAVE_DIR is
// forced there); resumes from the newest snapshot in work_dir when there is
// one (a job that ran before a restart). Progress goes to sink. EXPORT
// jobs write their files to work_dir/export.
absl::StatusOr<JobOutcome> RunJob(const JobRequest& request, const Config& config,
                                  const std::string& work_dir, ProgressSink* sink,
                                  const std::atomic<bool>* stop);

}  // namespace segqat::runtime

#endif  // SEGQAT_WORKER_RUNTIME_JOB_RUNNER_H_
