#include "engine/runtime/layer_diff.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/data/loader.h"
#include "engine/export/exporter.h"
#include "engine/infer/engine.h"
#include "engine/quant/codes_probe.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_layers.h"
#include "engine/train/dataset.h"
#include "engine/train/model_loader.h"

namespace segqat::runtime {
namespace {

// Clears the thread's probe however the scope ends.
struct ProbeScope {
  explicit ProbeScope(quant::CodesProbe probe) { quant::SetCodesProbe(std::move(probe)); }
  ~ProbeScope() { quant::SetCodesProbe({}); }
};

}  // namespace

LayerDiffer::LayerDiffer(models::DeepLabV3PlusImpl& simulated, infer::Engine& engine)
    : simulated_(simulated), engine_(engine) {
  for (const auto& item : simulated_.named_modules()) names_[item.value().get()] = item.key();
}

absl::Status LayerDiffer::Add(const at::Tensor& images) {
  std::map<std::string, at::Tensor> sim_codes, engine_codes;
  at::Tensor sim_logits;
  const bool was_training = simulated_.is_training();
  simulated_.eval();
  try {
    at::NoGradGuard no_grad;
    {
      ProbeScope scope([&](const torch::nn::Module& layer, const at::Tensor& codes) {
        auto it = names_.find(&layer);
        if (it != names_.end()) sim_codes[it->second] = codes.contiguous().clone();
      });
      sim_logits = simulated_.forward(images).contiguous();
    }
    if (was_training) simulated_.train();
    engine_.set_probe([&](const exports::Node& node, const at::Tensor& codes) {
      engine_codes[node.name] = codes.contiguous().clone();
    });
    auto engine_logits = engine_.Run(images);
    engine_.set_probe(nullptr);
    if (!engine_logits.ok()) return engine_logits.status();
    for (const exports::Node& node : engine_.graph().nodes) {
      auto e = engine_codes.find(node.name);
      if (e == engine_codes.end()) continue;
      Accumulated& t = totals_[node.name];
      t.op = node.kind == exports::OpKind::kAdd ? "add output" : "conv input";
      auto s = sim_codes.find(node.name);
      if (s == sim_codes.end() || s->second.sizes() != e->second.sizes()) {
        t.unmatched = true;
        continue;
      }
      at::Tensor d = (s->second - e->second).abs();
      t.codes += d.numel();
      t.differing += d.gt(0).sum().item<int64_t>();
      t.max_difference =
          std::max<int64_t>(t.max_difference, static_cast<int64_t>(d.max().item<float>()));
    }
    for (const auto& [name, codes] : sim_codes) {
      if (!engine_codes.count(name)) totals_[name].unmatched = true;
    }
    logits_max_difference_ = std::max<double>(
        logits_max_difference_, (sim_logits - *engine_logits).abs().max().item<double>());
    pixels_ += sim_logits.size(0) * sim_logits.size(2) * sim_logits.size(3);
    same_labels_ += sim_logits.argmax(1).eq(engine_logits->argmax(1)).sum().item<int64_t>();
    images_ += static_cast<int>(images.size(0));
  } catch (const c10::Error& e) {
    engine_.set_probe(nullptr);
    return absl::InternalError(absl::StrCat("diff failed: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

LayerDiff LayerDiffer::Result() const {
  LayerDiff diff;
  diff.images = images_;
  std::map<std::string, Accumulated> rest = totals_;
  // Graph order, then what only the simulation reported.
  for (const exports::Node& node : engine_.graph().nodes) {
    auto it = rest.find(node.name);
    if (it == rest.end()) continue;
    diff.tensors.push_back({node.name, it->second.op, it->second.codes, it->second.differing,
                            it->second.max_difference, it->second.unmatched});
    rest.erase(it);
  }
  for (const auto& [name, t] : rest) {
    diff.tensors.push_back({name, t.op.empty() ? "simulated only" : t.op, 0, 0, 0, true});
  }
  for (const TensorDiff& t : diff.tensors) {
    if (t.differing > 0 || t.unmatched) {
      diff.first_divergence = t.name;
      break;
    }
  }
  diff.logits_max_difference = logits_max_difference_;
  diff.pixel_agreement = pixels_ ? static_cast<double>(same_labels_) / pixels_ : 1.0;
  return diff;
}

absl::StatusOr<LayerDiff> DiffLayers(const Config& cfg, int max_images) {
  if (max_images < 1) return absl::InvalidArgumentError("--images: expects a number >= 1");
  const std::string dir = cfg.Text("TEST.TEST_MODEL");
  auto simulated = LoadCheckpointModel(cfg, "TEST.TEST_MODEL", dir, /*convert=*/false);
  if (!simulated.ok()) return simulated.status();
  bool quantized = false;
  for (const auto& m : (*simulated).model->modules()) {
    if (const auto* layer = dynamic_cast<const quant::QuantizableLayer*>(m.get())) {
      quantized |= layer->mode() == quant::LayerMode::kFakeQuant;
    }
  }
  if (!quantized) {
    return absl::InvalidArgumentError(
        "TEST.TEST_MODEL: a float checkpoint has no quantized tensors to diff");
  }
  auto converted = LoadCheckpointModel(cfg, "TEST.TEST_MODEL", dir, /*convert=*/true);
  if (!converted.ok()) return converted.status();
  auto graph = exports::BuildDeployGraph(*(*converted).model, cfg, /*normalize_inside=*/false);
  if (!graph.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TEST.TEST_MODEL: the engine cannot run it: ", graph.status().message()));
  }
  auto engine = infer::Engine::Create(*std::move(graph), infer::Precision::kInt8);
  if (!engine.ok()) return engine.status();

  auto entries = SplitEntries(cfg, Split::kVal);
  if (!entries.ok()) return entries.status();
  if (static_cast<int>(entries->size()) > max_images) entries->resize(max_images);

  LayerDiffer differ(*(*simulated).model, **engine);
  data::BatchLoader loader(*entries, LoaderFromConfig(cfg, data::LoaderMode::kEval), 0);
  while (true) {
    auto batch = loader.Next();
    if (!batch.ok()) return batch.status();
    if (!batch->has_value()) break;
    if (auto st = differ.Add(BatchImages(**batch)); !st.ok()) return st;
  }
  LayerDiff diff = differ.Result();
  if (diff.images == 0) return absl::InvalidArgumentError("DATASET.VAL_FILE_LIST: no images");
  return diff;
}

std::string LayerDiff::ToJson() const {
  nlohmann::json j;
  j["runtime"] = runtime;
  j["images"] = images;
  j["first_divergence"] =
      first_divergence.empty() ? nlohmann::json() : nlohmann::json(first_divergence);
  j["logits_max_difference"] = logits_max_difference;
  j["pixel_agreement"] = pixel_agreement;
  j["tensors"] = nlohmann::json::array();
  for (const TensorDiff& t : tensors) {
    j["tensors"].push_back({{"name", t.name},
                            {"op", t.op},
                            {"codes", t.codes},
                            {"differing", t.differing},
                            {"share", t.codes ? static_cast<double>(t.differing) / t.codes : 0.0},
                            {"max_difference", t.max_difference},
                            {"unmatched", t.unmatched}});
  }
  return j.dump(1) + "\n";
}

std::string LayerDiff::ToText() const {
  std::string out = absl::StrFormat("%-44s %-10s %12s %10s %9s %6s\n", "tensor", "op", "codes",
                                    "differing", "share", "max|d|");
  for (const TensorDiff& t : tensors) {
    if (t.unmatched) {
      absl::StrAppendFormat(&out, "%-44s %-10s %12s\n", t.name, t.op, "in one forward only");
      continue;
    }
    absl::StrAppendFormat(&out, "%-44s %-10s %12d %10d %8.4f%% %6d\n", t.name, t.op, t.codes,
                          t.differing, t.codes ? 100.0 * t.differing / t.codes : 0.0,
                          t.max_difference);
  }
  absl::StrAppendFormat(&out, "simulated vs %s over %d images: %s\n", runtime, images,
                        first_divergence.empty()
                            ? absl::StrCat("every code equal in all ", tensors.size(), " tensors")
                            : absl::StrCat("first divergence at ", first_divergence));
  absl::StrAppendFormat(&out, "logits: max |difference| %g, labels agree on %.4f%% of pixels\n",
                        logits_max_difference, 100.0 * pixel_agreement);
  return out;
}

}  // namespace segqat::runtime
