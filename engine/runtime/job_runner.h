// Runs one job on this process's engine: `segqat-worker train|eval|export`
// on the command line, and every job the service runs (embedded or remote
// workers) go through PrepareJob and RunJob, so checks and outputs live in
// one place. No gRPC here. Defined in prepare_job.cc (checks, device,
// resume point) and job_runner.cc (running each kind of job).
#ifndef SEGQAT_ENGINE_RUNTIME_JOB_RUNNER_H_
#define SEGQAT_ENGINE_RUNTIME_JOB_RUNNER_H_

#include <c10/core/Device.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/data/sample.h"
#include "engine/runtime/read_roots.h"
#include "engine/train/metrics.h"
#include "engine/train/model_loader.h"
#include "engine/train/progress.h"
#include "job/job_request.h"

namespace segqat {
class Collectives;
struct DatasetLists;  // engine/train/dataset.h
}  // namespace segqat

namespace segqat::runtime {

using job::JobKind;

// A job request (job/job_request.h: kind, config, flags, their defaults) and
// what the engine runs it with.
struct JobRequest : job::JobRequest {
  Collectives* collectives = nullptr;  // data-parallel training (engine/train/collectives.h)
  // Where the job may read (BuildJobConfig checks); none: anywhere.
  ReadRoots read_roots;
  // The file lists BuildJobConfig read and checked; the job uses these
  // entries (null: the job reads the lists itself).
  std::shared_ptr<const DatasetLists> lists;
};

// Maps the value of a path key that names another job's artifact
// ("jobs/ID/final") to the local directory holding it; values that are not
// references come back unchanged. Errors name the key.
using PathResolver =
    std::function<absl::StatusOr<std::string>(const std::string& key, const std::string& value)>;

// Builds the job's config: the YAML, then the overrides, then the flags
// (--not_quant_pattern), then `resolve` on ArtifactReferenceKeys() (may be
// empty). InvalidArgument naming the key for any config error; checks that
// every path the job reads is inside request.read_roots (before opening any),
// then that the dataset lists / folders and the checkpoint it needs exist.
// The lists it read go to `lists` when given.
absl::StatusOr<Config> BuildJobConfig(const JobRequest& request,
                                      const PathResolver& resolve = nullptr,
                                      DatasetLists* lists = nullptr);

// BuildJobConfig for a job about to run: the lists it read and checked are
// kept in request->lists, so that the job uses what was checked.
absl::StatusOr<Config> PrepareJob(JobRequest* request, const PathResolver& resolve = nullptr);

// Where a job's files go: for a service job everything sits in its work
// directory (InWorkDir); on the command line, where the config and flags say.
struct JobPaths {
  // Training: snapshots, final and best_model (TRAIN.MODEL_SAVE_DIR is set to
  // it); with resume_newest, training resumes from the newest snapshot there
  // (a job that ran before a restart).
  std::string save_dir;
  bool resume_newest = false;
  std::string export_dir;        // export: model.onnx, model.ts, deploy.yaml (FREEZE.SAVE_DIR)
  std::string metrics_json;      // eval, PTQ with do_eval: the metrics as JSON; empty: not written
  std::string sensitivity_json;  // sensitivity: the scan as JSON; empty: not written
  std::string diff_json;         // diff: the layer diff as JSON; empty: not written
  std::string int8_dir;          // eval --convert: the converted model; empty: not written
  // save_dir = work_dir (resumed), export_dir = work_dir/export,
  // metrics_json = work_dir/metrics.json, int8_dir = work_dir/int8,
  // sensitivity_json = work_dir/sensitivity.json, diff_json = work_dir/diff.json.
  static JobPaths InWorkDir(const std::string& work_dir);
};

struct JobOutcome {
  bool interrupted = false;  // stopped by *stop; resumable from the save dir
  // Directories and files worth keeping as artifacts, relative to the work
  // directory of JobPaths::InWorkDir ("final", "best_model", "metrics.json", ...).
  std::vector<std::string> outputs;
  std::optional<SegMetrics> metrics;  // eval: the model's
  std::optional<double> best_miou;    // training with do_eval
  int64_t steps = 0;                  // training: global steps done
  std::string last_checkpoint;        // training: the last one written
};

// The newest snapshot in `dir` (by global step) whose files all load; a torn
// one (killed mid-write, disk full) is skipped with a line to sink (may be
// null). Empty when there is none.
std::string NewestSnapshot(const std::string& dir, ProgressSink* sink);

// CPU, or CUDA device `gpu_index` with use_gpu (FailedPrecondition naming
// --use_gpu when this machine has no such device). A local slot or a
// data-parallel rank trains on the ordinal its placement names, never on a
// fixed cuda:0.
absl::StatusOr<c10::Device> PickDevice(bool use_gpu, int gpu_index = 0);
// The same, against `device_count` visible devices (tests fake the count).
absl::StatusOr<c10::Device> PickDevice(bool use_gpu, int gpu_index, int device_count);

// Process-wide set-up for running jobs, once from main (segqatd with local
// workers, segqat-worker): the allocator keeps freed memory, so each
// inference and step does not fault its activations in anew
// (infer::RetainFreedMemory).
void PrepareProcessForJobs();

// Evaluates a loaded checkpoint on `entries`. A converted model on the CPU
// runs on the INT8 engine (engine/infer), as it is deployed; on a GPU, or
// unconverted, the model itself runs on `device`.
absl::StatusOr<SegMetrics> EvaluateLoaded(LoadedModel& loaded, const Config& cfg,
                                          const std::vector<segqat::data::ListEntry>& entries,
                                          c10::Device device, bool converted,
                                          const std::atomic<bool>* stop = nullptr);

// Runs the job on the device the request names, writing where `paths`
// says. Progress goes to sink (null: the log). *stop (may be null) stops it
// between steps, resumably.
absl::StatusOr<JobOutcome> RunJob(const JobRequest& request, const Config& config,
                                  const JobPaths& paths, ProgressSink* sink,
                                  const std::atomic<bool>* stop);

}  // namespace segqat::runtime

#endif  // SEGQAT_ENGINE_RUNTIME_JOB_RUNNER_H_
