#include "engine/export/exporter.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/export/deploy_config.h"
#include "engine/export/onnx_model.h"
#include "engine/export/torchscript.h"
#include "engine/train/model_loader.h"

namespace segqat::exports {
namespace fs = std::filesystem;

absl::StatusOr<DeployGraph> BuildDeployGraph(const models::DeepLabV3PlusImpl& model,
                                             const Config& cfg, bool normalize_inside) {
  DeployGraph graph;
  graph.num_classes = model.options().num_classes;
  GraphBuilder g(&graph);
  try {
    std::string x = graph.input;
    if (normalize_inside) {
      // (x / 255 - mean) / std as x * mul + add.
      std::vector<float> mul, add;
      for (int c = 0; c < 3; ++c) {
        const double mean = cfg.Floats("MEAN")[c], std = cfg.Floats("STD")[c];
        mul.push_back(static_cast<float>(1.0 / (255.0 * std)));
        add.push_back(static_cast<float>(-mean / std));
      }
      x = g.Normalize(x, std::move(mul), std::move(add));
    }
    const std::string logits = model.Trace(g, x);
    // The last node writes the graph's output tensor.
    graph.nodes.back().output = graph.output;
    (void)logits;
  } catch (const TraceError& e) {
    return absl::FailedPreconditionError(absl::StrCat("export: ", e.what()));
  }
  PlanQuantizedOutputs(graph);
  if (auto st = ValidateGraph(graph); !st.ok()) return st;
  return graph;
}

namespace {

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// Puts `staging` in place of `dir`, keeping `dir` until the rename is done.
absl::Status Publish(const fs::path& staging, const fs::path& dir) {
  std::error_code ec;
  const fs::path old = dir.string() + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  if (!ec) fs::rename(staging, dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot move the export into ", dir.string(), ": ", ec.message()));
  }
  fs::remove_all(old, ec);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExportReport> ExportModel(const Config& cfg) {
  const std::string& source = cfg.Str("TEST.TEST_MODEL");
  auto ck = ReadCheckpoint(source);
  if (!ck.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("TEST.TEST_MODEL: ", ck.status().message()));
  }
  auto loaded = LoadCheckpointModel(cfg, "TEST.TEST_MODEL", source, ck->meta.quantized);
  if (!loaded.ok()) return loaded.status();
  auto graph = BuildDeployGraph(*loaded->model, cfg, cfg.Bool("SLIM.PREPROCESS"));
  if (!graph.ok()) return graph.status();

  const fs::path dir = cfg.Str("FREEZE.SAVE_DIR");
  if (dir.empty()) return absl::InvalidArgumentError("FREEZE.SAVE_DIR: no export directory given");
  const fs::path staging = dir.string() + absl::StrCat(".tmp-", getpid());
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("FREEZE.SAVE_DIR: cannot create ", staging.string(), ": ", ec.message()));
  }
  DeployConfig deploy = DeployConfig::FromConfig(cfg, ck->meta.quantized);
  OnnxOptions onnx;
  onnx.int8_weights_everywhere = cfg.Bool("FREEZE.ONNX_INT8_WEIGHTS");
  onnx.form = cfg.Str("FREEZE.ONNX_FORM") == "exact" ? OnnxForm::kExact : OnnxForm::kQdq;
  absl::Status st = WriteOnnx(*graph, (staging / deploy.onnx_filename).string(), onnx);
  if (st.ok()) st = WriteTorchScript(*graph, (staging / deploy.model_filename).string());
  if (st.ok()) st = WriteText(staging / "deploy.yaml", deploy.ToYaml());
  if (st.ok()) st = Publish(staging, dir);
  if (!st.ok()) {
    fs::remove_all(staging, ec);
    return st;
  }
  ExportReport r;
  r.dir = dir.string();
  r.quantized = ck->meta.quantized;
  for (const Node& n : graph->nodes) r.convs += n.kind == OpKind::kConv;
  r.quantized_convs = graph->QuantizedConvCount();
  r.weight_bytes = graph->WeightBytes();
  r.float_weight_bytes = graph->FloatWeightBytes();
  for (const Node& n : graph->nodes) {
    r.adds += n.kind == OpKind::kAdd;
    r.quantized_adds += n.kind == OpKind::kAdd && n.sum.quantized();
  }
  r.notes = loaded->checkpoint.notes;
  return r;
}

}  // namespace segqat::exports
