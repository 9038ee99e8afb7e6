// The layer diff (engine/runtime/layer_diff.h): LayerDiffer and the three
// things it compares the engine with (the simulated model, model.ts, ONNX
// Runtime through a dump and the compiled-in script). Over 400 lines because
// all three share the engine side, its probe and the per-tensor totals.
#include "engine/runtime/layer_diff.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/subprocess.h"
#include "engine/data/loader.h"
#include "engine/export/exporter.h"
#include "engine/export/onnx_model.h"
#include "engine/export/torchscript.h"
#include "engine/infer/engine.h"
#include "engine/quant/codes_probe.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_layers.h"
#include "engine/runtime/device_info.h"
#include "engine/runtime/onnx_layer_diff_script.h"
#include "engine/train/dataset.h"
#include "engine/train/model_loader.h"

namespace segqat::runtime {
namespace fs = std::filesystem;
namespace {

// The first tensor, in graph order, with a differing code or in one side
// only; "" when none.
std::string FirstDivergence(const std::vector<TensorDiff>& tensors) {
  for (const TensorDiff& t : tensors) {
    if (t.differing > 0 || t.unmatched) return t.name;
  }
  return "";
}

absl::Status WriteRaw(const fs::path& path, const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("diff: cannot write ", path.string()));
  return absl::OkStatus();
}

absl::Status WriteJson(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(1) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("diff: cannot write ", path.string()));
  return absl::OkStatus();
}

// Clears the thread's probe however the scope ends.
struct ProbeScope {
  explicit ProbeScope(quant::CodesProbe probe) { quant::SetCodesProbe(std::move(probe)); }
  ~ProbeScope() { quant::SetCodesProbe({}); }
};

}  // namespace

LayerDiffer::LayerDiffer(Forward reference, infer::Engine& engine)
    : reference_(std::move(reference)), engine_(engine) {}

LayerDiffer::LayerDiffer(models::DeepLabV3PlusImpl& simulated, infer::Engine& engine)
    : engine_(engine) {
  auto names = std::make_shared<std::map<const torch::nn::Module*, std::string>>();
  for (const auto& item : simulated.named_modules()) (*names)[item.value().get()] = item.key();
  reference_ = [&simulated, names](const at::Tensor& images,
                                   std::map<std::string, at::Tensor>* codes) {
    const bool was_training = simulated.is_training();
    simulated.eval();
    at::NoGradGuard no_grad;
    at::Tensor logits;
    {
      ProbeScope scope([&](const torch::nn::Module& layer, const at::Tensor& c) {
        auto it = names->find(&layer);
        if (it != names->end()) (*codes)[it->second] = c.contiguous().clone();
      });
      logits = simulated.forward(images).contiguous();
    }
    if (was_training) simulated.train();
    return logits;
  };
}

absl::Status LayerDiffer::Add(const at::Tensor& images) {
  std::map<std::string, at::Tensor> sim_codes, engine_codes;
  try {
    at::NoGradGuard no_grad;
    const at::Tensor sim_logits = reference_(images, &sim_codes);
    engine_.set_probe([&](const exports::Node& node, const at::Tensor& codes) {
      engine_codes[node.name] = codes.contiguous().clone();
    });
    auto engine_logits = engine_.Run(images);
    engine_.set_probe(nullptr);
    if (!engine_logits.ok()) return engine_logits.status();
    if (!dump_dir_.empty()) {
      if (auto st = Dump(images, *engine_logits, engine_codes); !st.ok()) return st;
    }
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

absl::Status LayerDiffer::Dump(const at::Tensor& images, const at::Tensor& logits,
                               const std::map<std::string, at::Tensor>& codes) const {
  const fs::path root(dump_dir_);
  const auto& nodes = engine_.graph().nodes;
  for (int64_t b = 0; b < images.size(0); ++b) {
    const std::string id = absl::StrFormat("%05d", images_ + b);
    std::error_code ec;
    fs::create_directories(root / "inputs", ec);
    fs::create_directories(root / "engine" / id, ec);
    if (ec) return absl::InternalError(absl::StrCat("diff: cannot create ", root.string()));
    const at::Tensor image = images.narrow(0, b, 1).to(at::kFloat);
    if (auto st = WriteRaw(root / "inputs" / (id + ".f32"), image); !st.ok()) return st;
    if (auto st = WriteJson(root / "inputs" / (id + ".json"), {{"shape", image.sizes().vec()}});
        !st.ok()) {
      return st;
    }
    if (auto st =
            WriteRaw(root / "engine" / (id + ".logits.f32"), logits.narrow(0, b, 1).to(at::kFloat));
        !st.ok()) {
      return st;
    }
    for (size_t k = 0; k < nodes.size(); ++k) {
      auto it = codes.find(nodes[k].name);
      if (it == codes.end()) continue;
      const at::Tensor c = it->second.narrow(0, b, 1).round().to(at::kShort);
      if (auto st = WriteRaw(root / "engine" / id / absl::StrCat(k, ".i16"), c); !st.ok()) {
        return st;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status LayerDiffer::WriteIndex() const {
  nlohmann::json tensors = nlohmann::json::array();
  const auto& nodes = engine_.graph().nodes;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const exports::Node& n = nodes[k];
    auto it = totals_.find(n.name);
    if (it == totals_.end()) continue;
    const bool conv = n.kind == exports::OpKind::kConv;
    tensors.push_back({{"index", k},
                       {"name", n.name},
                       {"op", it->second.op},
                       {"onnx", conv ? exports::OnnxConvOutputName(n) : n.output}});
  }
  return WriteJson(fs::path(dump_dir_) / "tensors.json", {{"tensors", tensors}});
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
                            it->second.max_difference, it->second.unmatched, ""});
    rest.erase(it);
  }
  for (const auto& [name, t] : rest) {
    diff.tensors.push_back({name, t.op.empty() ? "reference only" : t.op, 0, 0, 0, true, ""});
  }
  diff.first_divergence = FirstDivergence(diff.tensors);
  diff.logits_max_difference = logits_max_difference_;
  diff.pixel_agreement = pixels_ ? static_cast<double>(same_labels_) / pixels_ : 1.0;
  return diff;
}

namespace {

// The two forwards of a diff and the images they see.
struct DiffRun {
  LoadedModel simulated;
  std::unique_ptr<infer::Engine> engine;
  std::vector<data::ListEntry> entries;
};

absl::StatusOr<DiffRun> PrepareDiff(const Config& cfg, int max_images, const DatasetLists* lists,
                                    infer::EngineOptions engine_options = {}) {
  if (max_images < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("diff_images: expects a number >= 1, got ", max_images));
  }
  const std::string dir = cfg.Text("TEST.TEST_MODEL");
  auto simulated = LoadCheckpointModel(cfg, "TEST.TEST_MODEL", dir, /*convert=*/false);
  if (!simulated.ok()) return simulated.status();
  bool quantized = false;
  for (const auto& m : (*simulated).model->modules()) {
    if (const auto* layer = dynamic_cast<const quant::QuantizableLayer*>(m.get())) {
      quantized |= layer->mode() == quant::LayerMode::kFakeQuant;
    }
  }
  if (!quantized) return absl::InvalidArgumentError(kFloatCheckpointToDiff);
  auto converted = LoadCheckpointModel(cfg, "TEST.TEST_MODEL", dir, /*convert=*/true);
  if (!converted.ok()) return converted.status();
  auto graph = exports::BuildDeployGraph(*(*converted).model, cfg, /*normalize_inside=*/false);
  if (!graph.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TEST.TEST_MODEL: the engine cannot run it: ", graph.status().message()));
  }
  auto engine = infer::Engine::Create(*std::move(graph), infer::Precision::kInt8, engine_options);
  if (!engine.ok()) return engine.status();
  auto entries = SplitEntries(cfg, Split::kVal, lists);
  if (!entries.ok()) return entries.status();
  if (static_cast<int>(entries->size()) > max_images) entries->resize(max_images);
  return DiffRun{*std::move(simulated), *std::move(engine), *std::move(entries)};
}

absl::StatusOr<LayerDiff> Feed(const Config& cfg, const DiffRun& run, LayerDiffer& differ) {
  data::BatchLoader loader(run.entries, LoaderFromConfig(cfg, data::LoaderMode::kEval), 0);
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

}  // namespace

absl::StatusOr<LayerDiff> DiffLayers(const Config& cfg, int max_images, const DatasetLists* lists,
                                     infer::EngineOptions engine_options) {
  auto run = PrepareDiff(cfg, max_images, lists, engine_options);
  if (!run.ok()) return run.status();
  LayerDiffer differ(*run->simulated.model, *run->engine);
  return Feed(cfg, *run, differ);
}

absl::StatusOr<LayerDiff> DiffTorchScript(const Config& cfg, int max_images,
                                          const DatasetLists* lists) {
  auto run = PrepareDiff(cfg, max_images, lists);
  if (!run.ok()) return run.status();
  auto scratch_dir = ScratchDir::Create("segqat-diff");
  if (!scratch_dir.ok()) {
    return absl::InternalError(absl::StrCat("diff: ", scratch_dir.status().message()));
  }
  const std::string path = (fs::path((*scratch_dir)->path()) / "model.ts").string();
  if (auto st = exports::WriteTorchScript(run->engine->graph(), path); !st.ok()) return st;
  auto module = std::make_shared<torch::jit::Module>();
  try {
    *module = torch::jit::load(path);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("diff: cannot load model.ts: ", e.what_without_backtrace()));
  }
  LayerDiffer differ(
      [module](const at::Tensor& images, std::map<std::string, at::Tensor>* codes) {
        const c10::Dict<c10::IValue, c10::IValue> out =
            module->get_method("forward_codes")({images}).toGenericDict();
        at::Tensor logits;
        for (const auto& kv : out) {
          if (kv.key().toStringRef() == "logits") {
            logits = kv.value().toTensor().contiguous();
          } else {
            (*codes)[kv.key().toStringRef()] = kv.value().toTensor().contiguous();
          }
        }
        // What is diffed must be what model.ts computes.
        const at::Tensor forward = module->forward({images}).toTensor();
        TORCH_CHECK(at::equal(forward, logits),
                    "model.ts: forward_codes' logits are not forward's");
        return logits;
      },
      *run->engine);
  auto diff = Feed(cfg, *run, differ);
  if (diff.ok()) {
    diff->runtime =
        absl::StrCat("model.ts (TorchScript, LibTorch ", GetRuntimeInfo().libtorch, ")");
  }
  return diff;
}

absl::StatusOr<LayerDiff> DiffOnnxRuntime(const Config& cfg, int max_images,
                                          const std::string& python, const DatasetLists* lists) {
  auto run = PrepareDiff(cfg, max_images, lists);
  if (!run.ok()) return run.status();
  auto scratch_dir = ScratchDir::Create("segqat-diff");
  if (!scratch_dir.ok()) {
    return absl::InternalError(absl::StrCat("diff: ", scratch_dir.status().message()));
  }
  const std::string& scratch = (*scratch_dir)->path();
  const fs::path dir(scratch);

  LayerDiffer differ(*run->simulated.model, *run->engine);
  differ.DumpTo(scratch);
  auto engine_diff = Feed(cfg, *run, differ);
  if (!engine_diff.ok()) return engine_diff.status();
  if (auto st = differ.WriteIndex(); !st.ok()) return st;
  exports::OnnxOptions options;
  options.int8_weights_everywhere = cfg.Bool("FREEZE.ONNX_INT8_WEIGHTS");
  options.form =
      cfg.Str("FREEZE.ONNX_FORM") == "exact" ? exports::OnnxForm::kExact : exports::OnnxForm::kQdq;
  if (auto st = exports::WriteOnnx(run->engine->graph(), (dir / "model.onnx").string(), options);
      !st.ok()) {
    return st;
  }
  const std::string out = (dir / "diff.json").string(), log = (dir / "diff.log").string();
  auto rc = RunProcess({python, "-c", kOnnxLayerDiffScript, scratch}, out, log);
  if (!rc.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--runtime onnx: ", rc.status().message(),
                     "; --python (or SEGQAT_PYTHON) names a Python 3 with onnxruntime "
                     "(scripts/install-python.sh puts one in .venv)"));
  }
  if (*rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--runtime onnx (", python, "): ", FileTail(log)));
  }
  std::ifstream in(out);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("tensors")) {
    return absl::InternalError(absl::StrCat("--runtime onnx: no result (", FileTail(log), ")"));
  }
  LayerDiff diff;
  diff.runtime = absl::StrCat("onnxruntime ", j.value("onnxruntime", ""));
  diff.images = j.value("images", 0);
  for (const nlohmann::json& t : j["tensors"]) {
    diff.tensors.push_back({t.value("name", ""), t.value("op", ""), t.value("codes", int64_t{0}),
                            t.value("differing", int64_t{0}), t.value("max_difference", int64_t{0}),
                            t.value("unmatched", false), t.value("runtime_op", "")});
  }
  diff.first_divergence = FirstDivergence(diff.tensors);
  diff.logits_max_difference = j.value("logits_max_difference", 0.0);
  diff.pixel_agreement = j.value("pixel_agreement", 1.0);
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
    if (!t.runtime_op.empty()) j["tensors"].back()["runtime_op"] = t.runtime_op;
  }
  return j.dump(1) + "\n";
}

std::string LayerDiff::ToText() const {
  std::string out = absl::StrFormat("%-44s %-10s %12s %10s %9s %6s\n", "tensor", "op", "codes",
                                    "differing", "share", "max|d|");
  const TensorDiff* first = nullptr;
  for (const TensorDiff& t : tensors) {
    if (t.name == first_divergence && first == nullptr) first = &t;
    if (t.unmatched) {
      absl::StrAppendFormat(&out, "%-44s %-10s %12s\n", t.name, t.op,
                            t.runtime_op.empty() ? "in one forward only" : t.runtime_op);
      continue;
    }
    absl::StrAppendFormat(&out, "%-44s %-10s %12d %10d %8.4f%% %6d", t.name, t.op, t.codes,
                          t.differing, t.codes ? 100.0 * t.differing / t.codes : 0.0,
                          t.max_difference);
    out += t.runtime_op.empty() ? "\n" : absl::StrCat("  ", t.runtime_op, "\n");
  }
  std::string verdict = absl::StrCat("every code equal in all ", tensors.size(), " tensors");
  if (first != nullptr) {
    verdict = absl::StrCat("first divergence at ", first->name, " (", first->op,
                           first->runtime_op.empty() ? "" : "; made by " + first->runtime_op, ")");
  }
  absl::StrAppendFormat(&out, "simulated vs %s over %d images: %s\n", runtime, images, verdict);
  absl::StrAppendFormat(&out, "logits: max |difference| %g, labels agree on %.4f%% of pixels\n",
                        logits_max_difference, 100.0 * pixel_agreement);
  return out;
}

}  // namespace segqat::runtime
