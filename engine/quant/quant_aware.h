// PaddleSlim's two steps on a model built from quantizable layers:
// QuantAware turns on fake quantization in every layer whose op type is in
// quantize_op_types and whose qualified name (e.g. "features.3.conv.1.0",
// "last_conv") contains none of not_quant_pattern; Convert fixes the int8
// weights of every quantized layer.
#ifndef SEGQAT_ENGINE_QUANT_QUANT_AWARE_H_
#define SEGQAT_ENGINE_QUANT_QUANT_AWARE_H_

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/quant/quant_config.h"

namespace segqat::quant {

struct QuantAwareReport {
  std::vector<std::string> quantized;  // qualified layer names
  std::vector<std::string> skipped;    // matched not_quant_pattern
  std::vector<std::string> adds;       // residual adds quantized (SLIM.quant_add)
};

// True when `name` contains one of `patterns` (PaddleSlim's substring test).
bool MatchesNotQuantPattern(const std::string& name, const std::vector<std::string>& patterns);

// Idempotent for the same config. Fails (InvalidArgument) when no layer ends
// up quantized, since that is never what a user asking for QAT wants.
absl::StatusOr<QuantAwareReport> QuantAware(torch::nn::Module& model, const QuantConfig& config);

// True when any layer of the model is in fake-quant or converted mode.
bool IsQuantized(const torch::nn::Module& model);

// Converts every fake-quant layer and add. FailedPrecondition when no layer
// is quantized.
absl::Status Convert(torch::nn::Module& model);

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_QUANT_AWARE_H_
