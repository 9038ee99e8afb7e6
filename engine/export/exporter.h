// `segqat-worker export` and EXPORT jobs: TEST.TEST_MODEL (converted when it
// was trained quantized) to FREEZE.SAVE_DIR with
//   model.onnx   ONNX QDQ (onnx_model.h)
//   model.ts     TorchScript (torchscript.h)
//   deploy.yaml  PaddleSeg's deploy config (deploy_config.h)
// The directory is written next to its place and renamed into it, so a
// failed export leaves an earlier one intact.
#ifndef SEGQAT_ENGINE_EXPORT_EXPORTER_H_
#define SEGQAT_ENGINE_EXPORT_EXPORTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/export/graph.h"
#include "engine/models/deeplab.h"

namespace segqat::exports {

// The deployed graph of a float or converted model; with normalize_inside
// (SLIM.PREPROCESS) the graph takes raw 0-255 RGB and normalizes with MEAN
// and STD first.
absl::StatusOr<DeployGraph> BuildDeployGraph(const models::DeepLabV3PlusImpl& model,
                                             const Config& cfg, bool normalize_inside);

struct ExportReport {
  std::string dir;
  bool quantized = false;
  int convs = 0, quantized_convs = 0;
  int64_t weight_bytes = 0, float_weight_bytes = 0;
  int adds = 0, quantized_adds = 0;
  std::vector<std::string> notes;  // what an older checkpoint lacks (Checkpoint::notes)
};

absl::StatusOr<ExportReport> ExportModel(const Config& cfg);

}  // namespace segqat::exports

#endif  // SEGQAT_ENGINE_EXPORT_EXPORTER_H_
