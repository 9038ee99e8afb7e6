#include "engine/quant/quant_aware.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_layers.h"

namespace segqat::quant {

bool MatchesNotQuantPattern(const std::string& name, const std::vector<std::string>& patterns) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    return !p.empty() && name.find(p) != std::string::npos;
  });
}

namespace {

// Links every quantized conv to the batch norm registered right after it in
// the same parent (ConvBnAct's and InvertedResidual's Sequentials).
void FoldBatchNorms(torch::nn::Module& model) {
  for (const auto& parent : model.modules()) {
    const auto children = parent->children();
    for (size_t i = 0; i + 1 < children.size(); ++i) {
      auto conv = std::dynamic_pointer_cast<QConv2dImpl>(children[i]);
      auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(children[i + 1]);
      if (conv && bn && conv->mode() == LayerMode::kFakeQuant && !conv->folded_bn()) {
        conv->FoldBatchNorm(bn);
      }
    }
  }
}

}  // namespace

absl::StatusOr<QuantAwareReport> QuantAware(torch::nn::Module& model, const QuantConfig& config) {
  QuantAwareReport report;
  const auto& types = config.quantize_op_types;
  for (const auto& item : model.named_modules()) {
    auto layer = std::dynamic_pointer_cast<QuantizableLayer>(item.value());
    if (!layer) continue;
    if (std::find(types.begin(), types.end(), layer->op_type()) == types.end()) continue;
    if (MatchesNotQuantPattern(item.key(), config.not_quant_pattern)) {
      report.skipped.push_back(item.key());
      continue;
    }
    layer->EnableQuant(config);
    report.quantized.push_back(item.key());
  }
  if (config.fold_bn) FoldBatchNorms(model);
  if (config.quant_add) {
    for (const auto& item : model.named_modules()) {
      auto add = std::dynamic_pointer_cast<QAddImpl>(item.value());
      if (!add || MatchesNotQuantPattern(item.key(), config.not_quant_pattern)) continue;
      add->EnableQuant(config);
      report.adds.push_back(item.key());
    }
  }
  if (report.quantized.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SLIM.not_quant_pattern: no layer left to quantize (op types [", absl::StrJoin(types, ", "),
        "], patterns [", absl::StrJoin(config.not_quant_pattern, ", "), "])"));
  }
  return report;
}

bool IsQuantized(const torch::nn::Module& model) {
  for (const auto& m : model.modules()) {
    auto layer = std::dynamic_pointer_cast<QuantizableLayer>(m);
    if (layer && layer->mode() != LayerMode::kFloat) return true;
  }
  return false;
}

absl::Status Convert(torch::nn::Module& model) {
  int converted = 0;
  for (const auto& m : model.modules()) {
    auto layer = std::dynamic_pointer_cast<QuantizableLayer>(m);
    if (layer && layer->mode() == LayerMode::kFakeQuant) {
      layer->Convert();
      ++converted;
    }
    auto add = std::dynamic_pointer_cast<QAddImpl>(m);
    if (add && add->mode() == LayerMode::kFakeQuant) add->Convert();
  }
  if (converted == 0) {
    return absl::FailedPreconditionError(
        "convert: the model has no quantized layer (was it trained with --quant?)");
  }
  return absl::OkStatus();
}

}  // namespace segqat::quant
