// RunJob (engine/runtime/job_runner.h): each kind of job on the engine
// (training, export, eval, PTQ, the sensitivity scan, the layer diff) with
// its outputs. Over 400 lines: one short function per kind, sharing the
// output helpers; the checks before a job runs are prepare_job.cc.
#include "engine/runtime/job_runner.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/export/exporter.h"
#include "engine/infer/engine.h"
#include "engine/quant/calibration.h"
#include "engine/runtime/layer_diff.h"
#include "engine/train/checkpoint.h"
#include "engine/train/dataset.h"
#include "engine/train/evaluator.h"
#include "engine/train/model_loader.h"
#include "engine/train/post_training.h"
#include "engine/train/trainer.h"
#include "job/artifact_layout.h"

namespace segqat::runtime {
namespace fs = std::filesystem;
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
      return Evaluate([&](const at::Tensor& images) { return e.Run(images); }, cfg, entries, stop);
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
  p.export_dir = (fs::path(work_dir) / job::kExport).string();
  p.metrics_json = (fs::path(work_dir) / job::kMetricsJson).string();
  p.int8_dir = (fs::path(work_dir) / job::kInt8).string();
  p.sensitivity_json = (fs::path(work_dir) / job::kSensitivityJson).string();
  p.diff_json = (fs::path(work_dir) / job::kDiffJson).string();
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

absl::StatusOr<JobOutcome> RunTraining(const JobRequest& request, Config cfg, const JobPaths& paths,
                                       c10::Device device, ProgressSink* sink,
                                       const std::atomic<bool>* stop) {
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
  opt.log_steps = request.log_steps;
  opt.device = device;
  opt.stop = stop;
  opt.collectives = request.collectives;
  opt.lists = request.lists.get();
  auto result = Train(cfg, opt, sink);
  if (!result.ok()) return result.status();
  outcome.interrupted = result->interrupted;
  outcome.best_miou = result->best_miou;
  outcome.steps = result->steps_completed;
  outcome.last_checkpoint = result->final_dir;
  if (!outcome.interrupted) {
    outcome.outputs.push_back(job::kFinal);
    if (fs::exists(fs::path(cfg.Str("TRAIN.MODEL_SAVE_DIR")) / job::kBestModel)) {
      outcome.outputs.push_back(job::kBestModel);
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
                           ": model.onnx, model.ts, deploy.yaml; ", report->quantized_convs, " of ",
                           report->convs, " convs and ", report->quantized_adds, " of ",
                           report->adds, " residual adds int8, conv weights ", report->weight_bytes,
                           " bytes, ",
                           absl::StrFormat("%.3f", static_cast<double>(report->weight_bytes) /
                                                       report->float_weight_bytes),
                           " of float (", report->float_weight_bytes, " bytes)"));
  JobOutcome outcome;
  outcome.outputs.push_back(job::kExport);
  return outcome;
}

struct Latency {
  double int8_ms = 0, float_ms = 0;
  int64_t height = 0, width = 0;
};

// The converted model's INT8 engine against the float engine of the same
// graph, on the first val image: the median of 7 runs each, interleaved
// after 2 warm-up runs, so both see the same machine load.
absl::StatusOr<Latency> MeasureLatency(LoadedModel& loaded, const Config& cfg,
                                       const std::vector<data::ListEntry>& entries) {
  if (entries.empty()) return absl::FailedPreconditionError("no val image");
  auto graph = exports::BuildDeployGraph(*loaded.model, cfg, /*normalize_inside=*/false);
  if (!graph.ok()) return graph.status();
  auto int8 = infer::Engine::Create(*graph, infer::Precision::kInt8);
  if (!int8.ok()) return int8.status();
  auto fp = infer::Engine::Create(*std::move(graph), infer::Precision::kFloat);
  if (!fp.ok()) return fp.status();
  data::BatchLoader loader({entries.front()}, LoaderFromConfig(cfg, data::LoaderMode::kEval), 0);
  auto batch = loader.Next();
  if (!batch.ok()) return batch.status();
  if (!batch->has_value()) return absl::FailedPreconditionError("no val image");
  const at::Tensor image = BatchImages(**batch);
  auto time_ms = [&](infer::Engine& e) -> absl::StatusOr<double> {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = e.Run(image);
    if (!out.ok()) return out.status();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> a, b;
  for (int i = 0; i < 9; ++i) {
    auto ta = time_ms(**int8);
    if (!ta.ok()) return ta.status();
    auto tb = time_ms(**fp);
    if (!tb.ok()) return tb.status();
    if (i >= 2) {
      a.push_back(*ta);
      b.push_back(*tb);
    }
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  Latency l;
  l.int8_ms = a[a.size() / 2];
  l.float_ms = b[b.size() / 2];
  l.height = image.size(2);
  l.width = image.size(3);
  return l;
}

// PTQ's and the scan's calibration, as the request asks.
absl::StatusOr<PtqOptions> PtqFromRequest(const JobRequest& request, c10::Device device,
                                          const std::atomic<bool>* stop) {
  PtqOptions o;
  if (!request.calib.empty()) {
    auto m = quant::ParseCalibMethod(request.calib, "--calib");
    if (!m.ok()) return m.status();
    o.calib.method = *m;
  }
  o.calib_batches = request.calib_batches;
  o.device = device;
  o.stop = stop;
  o.lists = request.lists.get();
  return o;
}

absl::StatusOr<JobOutcome> RunPtq(const JobRequest& request, Config cfg, const JobPaths& paths,
                                  c10::Device device, ProgressSink* sink,
                                  const std::atomic<bool>* stop) {
  auto options = PtqFromRequest(request, device, stop);
  if (!options.ok()) return options.status();
  const PtqOptions& o = *options;
  JobOutcome outcome;
  auto ptq = PostTrainingQuantize(cfg, "TRAIN.PRETRAINED_MODEL_DIR", o, sink);
  if (!ptq.ok()) {
    if (absl::IsCancelled(ptq.status())) {
      outcome.interrupted = true;
      return outcome;
    }
    return ptq.status();
  }
  if (!paths.save_dir.empty()) (void)cfg.Set("TRAIN.MODEL_SAVE_DIR", paths.save_dir);
  const std::string final_dir = (fs::path(cfg.Str("TRAIN.MODEL_SAVE_DIR")) / job::kFinal).string();
  if (auto st = SavePtqCheckpoint(final_dir, *ptq, cfg); !st.ok()) return st;
  sink->OnSnapshot({0, job::kFinal, final_dir});
  outcome.outputs.push_back(job::kFinal);
  outcome.last_checkpoint = final_dir;
  if (request.do_eval) {
    auto entries = SplitEntries(cfg, Split::kVal, request.lists.get());
    if (!entries.ok()) return entries.status();
    ptq->model->to(device);
    auto metrics = Evaluate(ptq->model, cfg, *entries, device, stop);
    if (!metrics.ok()) {
      if (absl::IsCancelled(metrics.status())) {
        outcome.interrupted = true;
        return outcome;
      }
      return metrics.status();
    }
    sink->OnEval({0, *metrics});
    outcome.metrics = *metrics;
    if (!paths.metrics_json.empty()) {
      nlohmann::json j = nlohmann::json::parse(metrics->ToJson());
      j["model"] = "quantized";
      j["calib"] = quant::CalibMethodName(o.calib.method);
      j["calib_images"] = ptq->calib_images;
      if (auto st = WriteText(paths.metrics_json, j.dump(1) + "\n", "metrics"); !st.ok()) {
        return st;
      }
      outcome.outputs.push_back(job::kMetricsJson);
    }
  }
  return outcome;
}

absl::StatusOr<JobOutcome> RunSensitivity(const JobRequest& request, const Config& cfg,
                                          const JobPaths& paths, c10::Device device,
                                          ProgressSink* sink, const std::atomic<bool>* stop) {
  auto options = PtqFromRequest(request, device, stop);
  if (!options.ok()) return options.status();
  const PtqOptions& o = *options;
  JobOutcome outcome;
  auto ptq = PostTrainingQuantize(cfg, "TEST.TEST_MODEL", o, sink);
  const double budget = request.drop_budget;
  absl::StatusOr<SensitivityReport> report =
      ptq.ok() ? ScanSensitivity(*ptq, cfg, budget / 100.0, device, sink, stop, request.lists.get())
               : ptq.status();
  if (!report.ok()) {
    if (absl::IsCancelled(report.status())) {
      outcome.interrupted = true;
      return outcome;
    }
    return report.status();
  }
  report->calib = quant::CalibMethodName(o.calib.method);
  std::string table = absl::StrFormat("%-40s %-16s %8s %8s\n", "layer", "kind", "mIoU", "drop");
  for (const LayerSensitivity& l : report->layers) {
    table += absl::StrFormat("%-40s %-16s %8.4f %+8.2f\n", l.name, l.kind, l.miou, 100 * l.drop);
  }
  sink->OnLog(absl::StrCat("sensitivity (drop in mIoU points, worst first):\n", table));
  sink->OnLog(absl::StrFormat(
      "float mIoU %.4f, PTQ (%s) %.4f; --not_quant_pattern %s gives %.4f (budget %.2f points)",
      report->float_miou, report->calib, report->ptq_miou,
      report->suggested_pattern.empty() ? std::string("(none needed)")
                                        : absl::StrJoin(report->suggested_pattern, " "),
      report->suggested_miou, budget));
  if (!paths.sensitivity_json.empty()) {
    if (auto st = WriteText(paths.sensitivity_json, report->ToJson(), "sensitivity"); !st.ok()) {
      return st;
    }
    outcome.outputs.push_back(fs::path(paths.sensitivity_json).filename().string());
  }
  return outcome;
}

// The layer-by-layer diff as a job: its table in the log, diff.json as its
// output. Parted codes are the diff's finding, not a failure of the job.
absl::StatusOr<JobOutcome> RunDiff(const JobRequest& request, const Config& cfg,
                                   const JobPaths& paths, ProgressSink* sink) {
  sink->OnLog(absl::StrCat("diffing ", cfg.Str("TEST.TEST_MODEL"),
                           ": the simulated model against the INT8 engine on ", request.diff_images,
                           " val images"));
  auto diff = DiffLayers(cfg, request.diff_images, request.lists.get());
  if (!diff.ok()) return diff.status();
  sink->OnLog(diff->ToText());
  JobOutcome outcome;
  if (!paths.diff_json.empty()) {
    if (auto st = WriteText(paths.diff_json, diff->ToJson(), "diff"); !st.ok()) return st;
    outcome.outputs.push_back(fs::path(paths.diff_json).filename().string());
  }
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
  auto entries = SplitEntries(cfg, Split::kVal, request.lists.get());
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
    nlohmann::json j = nlohmann::json::parse(metrics->ToJson());
    j["model"] =
        loaded->checkpoint.meta.quantized ? (request.convert ? "int8" : "quantized") : "float";
    if (request.convert && device.is_cpu()) {
      auto latency = MeasureLatency(*loaded, cfg, *entries);
      if (latency.ok()) {
        j["latency_ms"] = {{"int8", latency->int8_ms},
                           {"float", latency->float_ms},
                           {"height", latency->height},
                           {"width", latency->width},
                           {"threads", at::get_num_threads()}};
        sink->OnLog(absl::StrFormat(
            "latency on one %dx%d image, %d threads: int8 %.2f ms, float %.2f ms (%.2fx)",
            latency->width, latency->height, at::get_num_threads(), latency->int8_ms,
            latency->float_ms, latency->float_ms / latency->int8_ms));
      } else {
        sink->OnLog(absl::StrCat("latency not measured: ", latency.status().message()));
      }
    }
    if (auto st = WriteText(paths.metrics_json, j.dump(1) + "\n", "metrics"); !st.ok()) return st;
    outcome.outputs.push_back(job::kMetricsJson);
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
    outcome.outputs.push_back(job::kInt8);
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
    case JobKind::kPtq:
      return RunPtq(request, config, paths, *device, sink, stop);
    case JobKind::kSensitivity:
      return RunSensitivity(request, config, paths, *device, sink, stop);
    case JobKind::kDiff:
      return RunDiff(request, config, paths, sink);
  }
  return absl::InvalidArgumentError("unknown job kind");
}

}  // namespace segqat::runtime
