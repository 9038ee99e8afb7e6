#include "worker/runtime/job_runner.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "worker/export/exporter.h"
#include "worker/infer/engine.h"
#include "worker/train/checkpoint.h"
#include "worker/train/dataset.h"
#include "worker/train/evaluator.h"
#include "worker/train/model_loader.h"
#include "worker/train/trainer.h"

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
    if (!e.is_directory() || name == "best_model" || name == "final") continue;
    auto ck = ReadCheckpoint(e.path().string());
    if (ck.ok()) found.emplace_back(ck->meta.step, e.path().string());
  }
  std::sort(found.begin(), found.end(), std::greater<>());
  for (const auto& [step, dir] : found) {
    absl::Status st = CheckCheckpointFiles(dir);
    if (st.ok()) return dir;
    if (sink != nullptr) {
      sink->OnLog(absl::StrCat("snapshot ", dir, " (step ", step, ") is damaged (",
                               st.message(), "); trying an older one"));
    }
  }
  return "";
}

absl::StatusOr<c10::Device> PickDevice(bool use_gpu, int gpu_index) {
  if (!use_gpu) return c10::Device(c10::kCPU);
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError("--use_gpu: no CUDA device is available to this build");
  }
  if (gpu_index < 0 || static_cast<size_t>(gpu_index) >= torch::cuda::device_count()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--use_gpu: no CUDA device ", gpu_index, " on this machine"));
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(gpu_index));
}

absl::StatusOr<Config> BuildJobConfig(const JobRequest& request, const PathResolver& resolve) {
  std::vector<std::string> overrides = request.overrides;
  if (!request.not_quant_pattern.empty()) {
    overrides.push_back("SLIM.not_quant_pattern");
    overrides.push_back(absl::StrCat("[", absl::StrJoin(request.not_quant_pattern, ","), "]"));
  }
  auto cfg = Config::FromYamlText(request.config_yaml, overrides);
  if (!cfg.ok()) return cfg.status();
  if (resolve) {
    for (const std::string& key : ArtifactReferenceKeys()) {
      if (cfg->Str(key).empty()) continue;
      auto path = resolve(key, cfg->Str(key));
      if (!path.ok()) return path.status();
      if (auto st = cfg->Set(key, *path); !st.ok()) return st;
    }
  }
  const bool trains = request.kind == JobKind::kTrain || request.kind == JobKind::kQuantTrain;
  // The paths this job reads, checked against the worker's --data-root
  // before any is opened.
  std::vector<std::string> reads;
  if (trains) {
    reads = {"DATASET.DATA_DIR", "DATASET.TRAIN_FILE_LIST", "TRAIN.PRETRAINED_MODEL_DIR",
             "TRAIN.RESUME_MODEL_DIR"};
  } else {
    reads = {"TEST.TEST_MODEL"};
  }
  if ((!trains && request.kind != JobKind::kExport) || request.do_eval) {
    reads.insert(reads.end(), {"DATASET.DATA_DIR", "DATASET.VAL_FILE_LIST"});
  }
  if (auto st = request.read_roots.CheckConfig(*cfg, reads); !st.ok()) return st;
  if (trains) {
    auto train = SplitEntries(*cfg, Split::kTrain);
    if (!train.ok()) return absl::InvalidArgumentError(train.status().message());
    if (auto st = request.read_roots.CheckEntries(*train, "DATASET.TRAIN_FILE_LIST"); !st.ok()) {
      return st;
    }
    for (const char* key : {"TRAIN.PRETRAINED_MODEL_DIR", "TRAIN.RESUME_MODEL_DIR"}) {
      if (auto st = CheckPathExists(*cfg, key); !st.ok()) return st;
    }
  }
  if ((!trains && request.kind != JobKind::kExport) || request.do_eval) {
    auto val = SplitEntries(*cfg, Split::kVal);
    if (!val.ok()) return absl::InvalidArgumentError(val.status().message());
    if (auto st = request.read_roots.CheckEntries(*val, "DATASET.VAL_FILE_LIST"); !st.ok()) {
      return st;
    }
  }
  if (!trains) {
    if (cfg->Str("TEST.TEST_MODEL").empty()) {
      return absl::InvalidArgumentError("TEST.TEST_MODEL: the checkpoint to evaluate is required");
    }
    auto ck = ReadCheckpoint(cfg->Str("TEST.TEST_MODEL"));
    if (!ck.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("TEST.TEST_MODEL: ", ck.status().message()));
    }
    if (request.convert && !ck->meta.quantized) {
      return absl::InvalidArgumentError(
          "TEST.TEST_MODEL: --convert needs a quantized checkpoint (trained with --quant)");
    }
  }
  return cfg;
}

absl::StatusOr<SegMetrics> EvaluateLoaded(LoadedModel& loaded, const Config& cfg,
                                          const std::vector<data::ListEntry>& entries,
                                          c10::Device device, bool converted,
                                          const std::atomic<bool>* stop) {
  if (converted && device.is_cpu()) {
    // Models the exports cannot express (abs_max activations) run as they are.
    auto graph = exports::BuildDeployGraph(*loaded.model, cfg, /*normalize_inside=*/false);
    if (graph.ok()) {
      auto engine = infer::Engine::Create(*std::move(graph), infer::Precision::kInt8);
      if (!engine.ok()) return engine.status();
      infer::Engine& e = **engine;
      return Evaluate([&](const at::Tensor& images) { return e.Run(images); }, cfg, entries,
                      stop);
    }
  }
  loaded.model->to(device);
  return Evaluate(loaded.model, cfg, entries, device, stop);
}

void PrepareProcessForJobs() { infer::RetainFreedMemory(); }

JobPaths JobPaths::InWorkDir(const std::string& work_dir) {
  JobPaths p;
  p.save_dir = work_dir;
  p.resume_newest = true;
  p.export_dir = (fs::path(work_dir) / "export").string();
  p.metrics_json = (fs::path(work_dir) / "metrics.json").string();
  p.int8_dir = (fs::path(work_dir) / "int8").string();
  return p;
}

namespace {

absl::Status WriteText(const std::string& path, const std::string& text, const char* what) {
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(what, ": cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<JobOutcome> RunTraining(const JobRequest& request, Config cfg,
                                       const JobPaths& paths, c10::Device device,
                                       ProgressSink* sink, const std::atomic<bool>* stop) {
  JobOutcome outcome;
  if (!paths.save_dir.empty()) {
    std::error_code ec;
    fs::create_directories(paths.save_dir, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", paths.save_dir, ": ", ec.message()));
    }
    (void)cfg.Set("TRAIN.MODEL_SAVE_DIR", paths.save_dir);
  }
  if (paths.resume_newest) {
    const std::string resume = NewestSnapshot(cfg.Str("TRAIN.MODEL_SAVE_DIR"), sink);
    if (!resume.empty()) {
      (void)cfg.Set("TRAIN.RESUME_MODEL_DIR", resume);
      sink->OnLog(absl::StrCat("resuming from the job's snapshot ", resume));
    }
  }
  TrainOptions opt;
  opt.quant = request.kind == JobKind::kQuantTrain;
  opt.do_eval = request.do_eval;
  opt.log_steps = request.log_steps > 0 ? request.log_steps : 10;
  opt.device = device;
  opt.stop = stop;
  opt.collectives = request.collectives;
  auto result = Train(cfg, opt, sink);
  if (!result.ok()) return result.status();
  outcome.interrupted = result->interrupted;
  outcome.best_miou = result->best_miou;
  outcome.steps = result->steps_completed;
  outcome.last_checkpoint = result->final_dir;
  if (!outcome.interrupted) {
    outcome.outputs.push_back("final");
    if (fs::exists(fs::path(cfg.Str("TRAIN.MODEL_SAVE_DIR")) / "best_model")) {
      outcome.outputs.push_back("best_model");
    }
  }
  return outcome;
}

absl::StatusOr<JobOutcome> RunExport(Config cfg, const JobPaths& paths, ProgressSink* sink) {
  if (cfg.Str("TEST.TEST_MODEL").empty()) {
    return absl::InvalidArgumentError("TEST.TEST_MODEL: the checkpoint to export is required");
  }
  if (!paths.export_dir.empty()) (void)cfg.Set("FREEZE.SAVE_DIR", paths.export_dir);
  auto report = exports::ExportModel(cfg);
  if (!report.ok()) return report.status();
  for (const std::string& note : report->notes) sink->OnLog(note);
  sink->OnLog(absl::StrCat("exported ", cfg.Str("TEST.TEST_MODEL"), " to ", report->dir,
                           ": model.onnx, model.ts, deploy.yaml; ", report->quantized_convs,
                           " of ", report->convs, " convs and ", report->quantized_adds, " of ",
                           report->adds, " residual adds int8, conv weights ",
                           report->weight_bytes, " bytes, ",
                           absl::StrFormat("%.3f", static_cast<double>(report->weight_bytes) /
                                                       report->float_weight_bytes),
                           " of float (", report->float_weight_bytes, " bytes)"));
  JobOutcome outcome;
  outcome.outputs.push_back("export");
  return outcome;
}

absl::StatusOr<JobOutcome> RunEval(const JobRequest& request, const Config& cfg,
                                   const JobPaths& paths, c10::Device device, ProgressSink* sink,
                                   const std::atomic<bool>* stop) {
  if (cfg.Str("TEST.TEST_MODEL").empty()) {
    return absl::InvalidArgumentError("TEST.TEST_MODEL: the checkpoint to evaluate is required");
  }
  auto loaded =
      LoadCheckpointModel(cfg, "TEST.TEST_MODEL", cfg.Str("TEST.TEST_MODEL"), request.convert);
  if (!loaded.ok()) return loaded.status();
  if (request.convert) {
    for (const std::string& note : loaded->checkpoint.notes) sink->OnLog(note);
  }
  if (!request.not_quant_pattern.empty() && loaded->checkpoint.meta.quantized &&
      loaded->checkpoint.config.Strs("SLIM.not_quant_pattern") !=
          cfg.Strs("SLIM.not_quant_pattern")) {
    sink->OnLog(absl::StrCat("--not_quant_pattern differs from the checkpoint's ",
                             loaded->checkpoint.config.Text("SLIM.not_quant_pattern"),
                             "; the checkpoint's is used"));
  }
  sink->OnLog(absl::StrCat("evaluating ", cfg.Str("TEST.TEST_MODEL"), " (",
                           loaded->checkpoint.meta.quantized ? "quantized" : "float",
                           request.convert ? ", converted to int8" : "", ")"));
  auto entries = SplitEntries(cfg, Split::kVal);
  if (!entries.ok()) return entries.status();
  JobOutcome outcome;
  auto metrics = EvaluateLoaded(*loaded, cfg, *entries, device, request.convert, stop);
  if (!metrics.ok()) {
    if (absl::IsCancelled(metrics.status())) {
      outcome.interrupted = true;
      return outcome;
    }
    return metrics.status();
  }
  sink->OnEval({loaded->checkpoint.meta.epoch, *metrics});
  outcome.metrics = *metrics;
  if (!paths.metrics_json.empty()) {
    if (auto st = WriteText(paths.metrics_json, metrics->ToJson(), "metrics"); !st.ok()) return st;
    outcome.outputs.push_back("metrics.json");
  }
  if (request.convert && !paths.int8_dir.empty()) {
    // The converted model as deployed: int8 weight codes and scales.
    const fs::path int8(paths.int8_dir);
    loaded->model->to(c10::Device(c10::kCPU));
    if (auto st = SaveTensorFile((int8 / "model.pt").string(), ConvertedState(*loaded->model));
        !st.ok()) {
      return st;
    }
    if (auto st = WriteText((int8 / "config.yaml").string(), loaded->checkpoint.config.ToYaml(),
                            "int8 model");
        !st.ok()) {
      return st;
    }
    sink->OnLog(absl::StrCat("saved the INT8 model to ", (int8 / "model.pt").string()));
    outcome.outputs.push_back("int8");
  }
  return outcome;
}

}  // namespace

absl::StatusOr<JobOutcome> RunJob(const JobRequest& request, const Config& config,
                                  const JobPaths& paths, ProgressSink* sink,
                                  const std::atomic<bool>* stop) {
  LogProgressSink log;
  if (sink == nullptr) sink = &log;
  auto device = PickDevice(request.use_gpu, request.gpu_index);
  if (!device.ok()) return device.status();
  switch (request.kind) {
    case JobKind::kTrain:
    case JobKind::kQuantTrain:
      return RunTraining(request, config, paths, *device, sink, stop);
    case JobKind::kExport:
      return RunExport(config, paths, sink);
    case JobKind::kEval:
      return RunEval(request, config, paths, *device, sink, stop);
  }
  return absl::InvalidArgumentError("unknown job kind");
}

}  // namespace segqat::runtime
