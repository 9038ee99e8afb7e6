// A hook for the layer-by-layer diff (engine/runtime/layer_diff.h): while
// one is set on a thread, each quantized layer that thread runs in eval
// mode hands it the integer codes it computes with (a conv: its input's
// codes; an add: its output's). Costs nothing when none is set.
#ifndef SEGQAT_ENGINE_QUANT_CODES_PROBE_H_
#define SEGQAT_ENGINE_QUANT_CODES_PROBE_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <functional>

namespace segqat::quant {

using CodesProbe = std::function<void(const torch::nn::Module& layer, const at::Tensor& codes)>;

// Sets (an empty one clears) this thread's probe.
void SetCodesProbe(CodesProbe probe);
// This thread's probe, or null.
const CodesProbe* CurrentCodesProbe();

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_CODES_PROBE_H_
