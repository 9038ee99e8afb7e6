// Before a job runs (engine/runtime/job_runner.h): its config built and
// checked (the job's rules, then its paths, lists and checkpoint on this
// machine, each list read once), the device it runs on, and the snapshot it
// resumes from.
#include <torch/cuda.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/quant/calibration.h"
#include "engine/runtime/job_runner.h"
#include "engine/runtime/layer_diff.h"
#include "engine/train/checkpoint.h"
#include "engine/train/dataset.h"
#include "job/artifact_layout.h"

namespace segqat::runtime {
namespace fs = std::filesystem;

namespace {

absl::Status CheckPathExists(const Config& cfg, const std::string& key) {
  const std::string& path = cfg.Str(key);
  if (path.empty()) return absl::OkStatus();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": ", path, " does not exist"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string NewestSnapshot(const std::string& work_dir, ProgressSink* sink) {
  std::vector<std::pair<int64_t, std::string>> found;  // (step, dir)
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(work_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name == job::kBestModel || name == job::kFinal) continue;
    auto ck = ReadCheckpoint(e.path().string());
    if (ck.ok()) found.emplace_back(ck->meta.step, e.path().string());
  }
  std::sort(found.begin(), found.end(), std::greater<>());
  for (const auto& [step, dir] : found) {
    absl::Status st = CheckCheckpointFiles(dir);
    if (st.ok()) return dir;
    if (sink != nullptr) {
      sink->OnLog(absl::StrCat("snapshot ", dir, " (step ", step, ") is damaged (", st.message(),
                               "); trying an older one"));
    }
  }
  return "";
}

absl::StatusOr<c10::Device> PickDevice(bool use_gpu, int gpu_index, int device_count) {
  if (!use_gpu) return c10::Device(c10::kCPU);
  if (device_count < 1) {
    return absl::FailedPreconditionError("--use_gpu: no CUDA device is visible on this machine");
  }
  if (gpu_index < 0 || gpu_index >= device_count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--use_gpu: no CUDA device ", gpu_index, " on this machine (it has ", device_count, ")"));
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(gpu_index));
}

absl::StatusOr<c10::Device> PickDevice(bool use_gpu, int gpu_index) {
  return PickDevice(use_gpu, gpu_index,
                    use_gpu ? static_cast<int>(torch::cuda::device_count()) : 0);
}

absl::StatusOr<Config> BuildJobConfig(const JobRequest& request, const PathResolver& resolve,
                                      DatasetLists* lists) {
  DatasetLists read;
  auto cfg = job::AssembleConfig(request);
  if (!cfg.ok()) return cfg.status();
  if (auto st = job::CheckJob(request, *cfg); !st.ok()) return st;
  if (resolve) {
    for (const std::string& key : ArtifactReferenceKeys()) {
      if (cfg->Str(key).empty()) continue;
      auto path = resolve(key, cfg->Str(key));
      if (!path.ok()) return path.status();
      if (auto st = cfg->Set(key, *path); !st.ok()) return st;
    }
  }
  const JobKind kind = request.kind;
  const bool trains = job::Trains(kind);
  // What the job reads: training images (training, PTQ's and the scan's
  // calibration), val images, and which checkpoint.
  const bool reads_train = trains || kind == JobKind::kPtq || kind == JobKind::kSensitivity;
  const bool reads_val = kind == JobKind::kEval || kind == JobKind::kSensitivity ||
                         kind == JobKind::kDiff || (request.do_eval && kind != JobKind::kExport);
  const bool reads_test_model = kind == JobKind::kEval || kind == JobKind::kExport ||
                                kind == JobKind::kSensitivity || kind == JobKind::kDiff;
  // The paths this job reads, checked against the worker's --data-root
  // before any is opened.
  std::vector<std::string> reads;
  if (reads_train) reads.insert(reads.end(), {"DATASET.DATA_DIR", "DATASET.TRAIN_FILE_LIST"});
  if (trains || kind == JobKind::kPtq) reads.push_back("TRAIN.PRETRAINED_MODEL_DIR");
  if (trains) reads.push_back("TRAIN.RESUME_MODEL_DIR");
  if (reads_test_model) reads.push_back("TEST.TEST_MODEL");
  if (reads_val) reads.insert(reads.end(), {"DATASET.DATA_DIR", "DATASET.VAL_FILE_LIST"});
  if (auto st = request.read_roots.CheckConfig(*cfg, reads); !st.ok()) return st;
  if (reads_train) {
    auto train = read.ReadAndKeep(*cfg, Split::kTrain);
    if (!train.ok()) return absl::InvalidArgumentError(train.status().message());
    if (auto st = request.read_roots.CheckEntries(*train, "DATASET.TRAIN_FILE_LIST"); !st.ok()) {
      return st;
    }
    if (!trains && train->empty()) {
      return absl::InvalidArgumentError(
          "DATASET.TRAIN_FILE_LIST: the calibration set is empty (calibration reads the training "
          "images)");
    }
  }
  if (trains || kind == JobKind::kPtq) {
    for (const char* key : {"TRAIN.PRETRAINED_MODEL_DIR", "TRAIN.RESUME_MODEL_DIR"}) {
      if (auto st = CheckPathExists(*cfg, key); !st.ok()) return st;
    }
  }
  if (reads_val) {
    auto val = read.ReadAndKeep(*cfg, Split::kVal);
    if (!val.ok()) return absl::InvalidArgumentError(val.status().message());
    if (auto st = request.read_roots.CheckEntries(*val, "DATASET.VAL_FILE_LIST"); !st.ok()) {
      return st;
    }
  }
  if (reads_test_model) {
    auto ck = ReadCheckpoint(cfg->Str("TEST.TEST_MODEL"));
    if (!ck.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("TEST.TEST_MODEL: ", ck.status().message()));
    }
    if (request.convert && !ck->meta.quantized) {
      return absl::InvalidArgumentError(
          "TEST.TEST_MODEL: --convert needs a quantized checkpoint (trained with --quant)");
    }
    if (kind == JobKind::kDiff && !ck->meta.quantized) {
      return absl::InvalidArgumentError(std::string(kFloatCheckpointToDiff));
    }
    if (kind == JobKind::kSensitivity && ck->meta.quantized) {
      return absl::InvalidArgumentError(
          "TEST.TEST_MODEL: the sensitivity scan starts from a float checkpoint");
    }
  }
  if (lists != nullptr) *lists = std::move(read);
  return cfg;
}

absl::StatusOr<Config> PrepareJob(JobRequest* request, const PathResolver& resolve) {
  auto lists = std::make_shared<DatasetLists>();
  auto cfg = BuildJobConfig(*request, resolve, lists.get());
  if (cfg.ok()) request->lists = std::move(lists);
  return cfg;
}

}  // namespace segqat::runtime
