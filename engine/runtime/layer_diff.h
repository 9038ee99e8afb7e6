// The layer-by-layer diff (`segqat-worker diff`): a quantized checkpoint's
// simulated model (eval mode, the fake-quant forward) against the INT8
// engine running its conversion, on the first N val images. For every
// quantized tensor in graph order (a conv's input codes, an add's output
// codes): how many integer codes differ and by how much, and the first
// tensor where the two part; then the logits and the labels.
// DiffOnnxRuntime compares ONNX Runtime's codes on the exported model with
// the engine's in the same way.
#ifndef SEGQAT_ENGINE_RUNTIME_LAYER_DIFF_H_
#define SEGQAT_ENGINE_RUNTIME_LAYER_DIFF_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/infer/engine.h"
#include "engine/models/deeplab.h"

namespace segqat {
struct DatasetLists;  // engine/train/dataset.h
}  // namespace segqat

namespace segqat::runtime {

inline constexpr char kFloatCheckpointToDiff[] =
    "TEST.TEST_MODEL: a float checkpoint has no quantized tensors to diff";

struct TensorDiff {
  std::string name;  // the layer ("backbone.features.2.conv.1.0", "....add")
  std::string op;    // "conv input", "add output"
  int64_t codes = 0, differing = 0, max_difference = 0;
  // Present in one forward only (a layer the other side does not quantize).
  bool unmatched = false;
  // An outside runtime: the ops that computed its codes there, nearest first
  // ("Clip <- QuantizeLinear <- Conv").
  std::string runtime_op;
};

struct LayerDiff {
  std::string runtime = "engine";
  int images = 0;
  std::vector<TensorDiff> tensors;  // graph order
  // The first tensor with a differing code (or unmatched), "" when none.
  std::string first_divergence;
  double logits_max_difference = 0;
  double pixel_agreement = 1;  // share of pixels with the same label

  std::string ToJson() const;
  std::string ToText() const;
};

// Accumulates the diff of a reference forward (the simulated model, or
// model.ts) against an engine over batches.
class LayerDiffer {
 public:
  // A reference forward: the logits of `images`, and the integer codes of
  // each quantized tensor into *codes by node name.
  using Forward =
      std::function<at::Tensor(const at::Tensor& images, std::map<std::string, at::Tensor>* codes)>;
  LayerDiffer(Forward reference, infer::Engine& engine);
  // The simulated model in eval mode (its fake-quant forward, probed). Both
  // must outlive the differ.
  LayerDiffer(models::DeepLabV3PlusImpl& simulated, infer::Engine& engine);
  // images: N x 3 x H x W, as both take them.
  absl::Status Add(const at::Tensor& images);
  LayerDiff Result() const;

  // From the next Add on, also writes under `dir` what an outside runtime
  // is compared with (engine/runtime/onnx_layer_diff.py): each image
  // (inputs/NNNNN.f32 and .json), the engine's codes of each quantized
  // tensor (engine/NNNNN/K.i16, K its node's index) and logits
  // (engine/NNNNN.logits.f32); WriteIndex adds tensors.json.
  void DumpTo(std::string dir) { dump_dir_ = std::move(dir); }
  absl::Status WriteIndex() const;

 private:
  struct Accumulated {
    std::string op;
    int64_t codes = 0, differing = 0, max_difference = 0;
    bool unmatched = false;
  };
  Forward reference_;
  infer::Engine& engine_;
  std::map<std::string, Accumulated> totals_;
  absl::Status Dump(const at::Tensor& images, const at::Tensor& logits,
                    const std::map<std::string, at::Tensor>& codes) const;
  std::string dump_dir_;
  int64_t pixels_ = 0, same_labels_ = 0;
  int images_ = 0;
  double logits_max_difference_ = 0;
};

// cfg names the checkpoint (TEST.TEST_MODEL, a quantized one) and the val
// list (its entries from `lists` when given); max_images >= 1. The engine
// runs with `engine_options` (integer_kernels: LibTorch's requantizing
// kernels, which part from the simulation where their rounding does).
// InvalidArgument names the key for a float checkpoint or one the engine
// cannot run (abs_max activations).
absl::StatusOr<LayerDiff> DiffLayers(const Config& cfg, int max_images,
                                     const DatasetLists* lists = nullptr,
                                     infer::EngineOptions engine_options = {});

// The same checkpoint exported to ONNX as `export` writes it
// (FREEZE.ONNX_FORM, FREEZE.ONNX_INT8_WEIGHTS; normalization outside, as
// the engine is fed), run by ONNX Runtime under `python` on the same
// images: each quantized tensor's codes there against the engine's, which
// DiffLayers shows to be the simulation's. FailedPrecondition quoting the script's error when
// `python` cannot run it (it needs numpy, onnx and onnxruntime).
// The checkpoint's model.ts, as `export` writes it, run in this process's
// LibTorch (its forward_codes method: forward's arithmetic, with each
// quantized tensor's codes) against the engine, tensor by tensor; the diff
// fails when forward_codes' logits are not forward's.
absl::StatusOr<LayerDiff> DiffTorchScript(const Config& cfg, int max_images,
                                          const DatasetLists* lists = nullptr);

absl::StatusOr<LayerDiff> DiffOnnxRuntime(const Config& cfg, int max_images,
                                          const std::string& python,
                                          const DatasetLists* lists = nullptr);

}  // namespace segqat::runtime

#endif  // SEGQAT_ENGINE_RUNTIME_LAYER_DIFF_H_
