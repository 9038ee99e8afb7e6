#include "engine/train/post_training.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/data/loader.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_config.h"
#include "engine/quant/quant_layers.h"
#include "engine/train/checkpoint.h"
#include "engine/train/dataset.h"
#include "engine/train/evaluator.h"

namespace segqat {
namespace {

absl::Status Prefixed(const std::string& key, const absl::Status& st) {
  return absl::Status(st.code(), absl::StrCat(key, ": ", st.message()));
}

// The model's fake-quant layers and adds by name, to turn on and off.
struct Switches {
  std::vector<std::pair<std::string, std::shared_ptr<quant::QuantizableLayer>>> layers;
  std::vector<std::pair<std::string, std::shared_ptr<quant::QAddImpl>>> adds;

  explicit Switches(torch::nn::Module& model) {
    for (const auto& item : model.named_modules()) {
      auto layer = std::dynamic_pointer_cast<quant::QuantizableLayer>(item.value());
      if (layer && layer->mode() == quant::LayerMode::kFakeQuant) {
        layers.emplace_back(item.key(), layer);
      }
      auto add = std::dynamic_pointer_cast<quant::QAddImpl>(item.value());
      if (add && add->mode() == quant::LayerMode::kFakeQuant) adds.emplace_back(item.key(), add);
    }
  }
  // Simulates quantization in the layers and adds `on` says yes to.
  template <typename Pred>
  void Set(const Pred& on) {
    for (auto& [name, layer] : layers) layer->set_simulated(on(name));
    for (auto& [name, add] : adds) add->set_simulated(on(name));
  }
};

}  // namespace

absl::StatusOr<PtqModel> PostTrainingQuantize(const Config& cfg, const std::string& key,
                                              const PtqOptions& options, ProgressSink* sink) {
  const std::string dir = cfg.Str(key);
  if (dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": the float checkpoint is required"));
  }
  if (cfg.Str("SLIM.activation_quantize_type") == "abs_max") {
    return absl::InvalidArgumentError(
        "SLIM.activation_quantize_type: abs_max takes each batch's own range, so post-training "
        "quantization has nothing to calibrate; use moving_average_abs_max or range_abs_max");
  }
  if (auto ck = ReadCheckpoint(dir); ck.ok() && ck->meta.quantized) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": ", dir,
                     " is already quantized; post-training quantization starts from a float "
                     "checkpoint"));
  }
  if (options.calib_batches < 1) {
    return absl::InvalidArgumentError("--calib-batches: expects a number >= 1");
  }
  auto entries = SplitEntries(cfg, Split::kTrain, options.lists);
  if (!entries.ok()) return entries.status();
  if (entries->empty()) {
    return absl::InvalidArgumentError(
        "DATASET.TRAIN_FILE_LIST: the calibration set is empty (PTQ calibrates on the training "
        "images)");
  }
  PtqModel out;
  try {
    out.model = models::DeepLabV3Plus(models::DeepLabOptions::FromConfig(cfg));
    auto loaded = LoadPretrained(dir, *out.model);
    if (!loaded.ok()) return Prefixed(key, loaded.status());
    if (!loaded->missing.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": ", loaded->source, " lacks ", loaded->missing.size(),
                       " of the model's tensors (", loaded->missing.front(),
                       ", ...): post-training quantization needs a fully trained "
                       "float model of this architecture"));
    }
    auto report = quant::QuantAware(*out.model, quant::QuantConfig::FromConfig(cfg));
    if (!report.ok()) return report.status();
    out.quant = *std::move(report);
    out.model->eval();
    out.model->to(options.device);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(key, ": ", e.what_without_backtrace()));
  }
  const int64_t n = std::min<int64_t>(
      static_cast<int64_t>(entries->size()),
      static_cast<int64_t>(options.calib_batches) * std::max<int64_t>(1, cfg.Int("BATCH_SIZE")));
  std::vector<data::ListEntry> calib(entries->begin(), entries->begin() + n);
  out.calib_images = n;
  sink->OnLog(absl::StrCat("calibrating ", out.quant.quantized.size(), " layers and ",
                           out.quant.adds.size(), " adds on ", n, " training images (",
                           quant::CalibMethodName(options.calib.method), ")"));
  auto run_batches = [&]() -> absl::Status {
    data::BatchLoader loader(calib, LoaderFromConfig(cfg, data::LoaderMode::kEval), 0);
    at::NoGradGuard no_grad;
    while (true) {
      if (options.stop != nullptr && options.stop->load()) {
        return absl::CancelledError("calibration cancelled");
      }
      auto batch = loader.Next();
      if (!batch.ok()) return batch.status();
      if (!batch->has_value()) return absl::OkStatus();
      out.model->forward(BatchImages(**batch).to(options.device));
    }
  };
  auto calibration = quant::Calibrate(*out.model, options.calib, run_batches);
  if (!calibration.ok()) return calibration.status();
  out.calibration = *std::move(calibration);
  out.model->to(c10::Device(c10::kCPU));
  return out;
}

absl::Status SavePtqCheckpoint(const std::string& dir, const PtqModel& ptq, const Config& cfg) {
  CheckpointMeta meta;
  meta.quantized = true;
  return SaveCheckpoint(dir, *ptq.model, {}, meta, cfg);
}

std::string SensitivityReport::ToJson() const {
  nlohmann::json j;
  j["float_miou"] = float_miou;
  j["ptq_miou"] = ptq_miou;
  j["calib"] = calib;
  j["calib_images"] = calib_images;
  j["budget"] = budget;
  j["suggested_pattern"] = suggested_pattern;
  j["suggested_miou"] = suggested_miou;
  nlohmann::json layers_json = nlohmann::json::array();
  for (const LayerSensitivity& l : layers) {
    layers_json.push_back({{"name", l.name}, {"kind", l.kind}, {"miou", l.miou}, {"drop", l.drop}});
  }
  j["layers"] = std::move(layers_json);
  return j.dump(1) + "\n";
}

absl::StatusOr<SensitivityReport> ScanSensitivity(PtqModel& ptq, const Config& cfg, double budget,
                                                  c10::Device device, ProgressSink* sink,
                                                  const std::atomic<bool>* stop,
                                                  const DatasetLists* lists) {
  auto entries = SplitEntries(cfg, Split::kVal, lists);
  if (!entries.ok()) return entries.status();
  if (entries->empty()) {
    return absl::InvalidArgumentError("DATASET.VAL_FILE_LIST: the val set is empty");
  }
  Switches switches(*ptq.model);
  ptq.model->to(device);
  auto eval = [&]() -> absl::StatusOr<double> {
    auto m = Evaluate(ptq.model, cfg, *entries, device, stop);
    if (!m.ok()) return m.status();
    return m->miou;
  };
  SensitivityReport r;
  r.budget = budget;
  r.calib_images = ptq.calib_images;
  switches.Set([](const std::string&) { return false; });
  auto base = eval();
  if (!base.ok()) return base.status();
  r.float_miou = *base;
  switches.Set([](const std::string&) { return true; });
  auto all = eval();
  if (!all.ok()) return all.status();
  r.ptq_miou = *all;
  sink->OnLog(
      absl::StrFormat("sensitivity: float mIoU %.4f, every layer quantized %.4f; scanning "
                      "%d layers and %d adds one at a time",
                      r.float_miou, r.ptq_miou, switches.layers.size(), switches.adds.size()));
  std::vector<std::pair<std::string, std::string>> scan;  // (name, kind)
  for (const auto& [name, layer] : switches.layers) scan.emplace_back(name, layer->op_type());
  for (const auto& [name, add] : switches.adds) scan.emplace_back(name, "add");
  for (const auto& [name, kind] : scan) {
    switches.Set([&name = name](const std::string& n) { return n == name; });
    auto miou = eval();
    if (!miou.ok()) return miou.status();
    r.layers.push_back({name, kind, *miou, r.float_miou - *miou});
  }
  std::stable_sort(
      r.layers.begin(), r.layers.end(),
      [](const LayerSensitivity& a, const LayerSensitivity& b) { return a.drop > b.drop; });
  // Keep the worst layers float, one more at a time, measuring each step
  // with exactly what the pattern would match.
  r.suggested_miou = r.ptq_miou;
  for (const LayerSensitivity& l : r.layers) {
    if (r.float_miou - r.suggested_miou <= budget || l.drop <= 0) break;
    r.suggested_pattern.push_back(l.name);
    switches.Set([&](const std::string& n) {
      return !quant::MatchesNotQuantPattern(n, r.suggested_pattern);
    });
    auto miou = eval();
    if (!miou.ok()) return miou.status();
    r.suggested_miou = *miou;
    sink->OnLog(absl::StrFormat("sensitivity: with %s float too, mIoU %.4f", l.name, *miou));
  }
  switches.Set([](const std::string&) { return true; });
  ptq.model->to(c10::Device(c10::kCPU));
  return r;
}

}  // namespace segqat
