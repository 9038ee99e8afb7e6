#include "engine/quant/quant_config.h"

namespace segqat::quant {

QuantConfig QuantConfig::FromConfig(const Config& cfg) {
  QuantConfig q;
  q.weight_type = cfg.Str("SLIM.weight_quantize_type") == "abs_max"
                      ? WeightQuantType::kAbsMax
                      : WeightQuantType::kChannelWiseAbsMax;
  const std::string& act = cfg.Str("SLIM.activation_quantize_type");
  q.activation_type = act == "abs_max"         ? ActivationQuantType::kAbsMax
                      : act == "range_abs_max" ? ActivationQuantType::kRangeAbsMax
                                               : ActivationQuantType::kMovingAverageAbsMax;
  q.weight_bits = static_cast<int>(cfg.Int("SLIM.weight_bits"));
  q.activation_bits = static_cast<int>(cfg.Int("SLIM.activation_bits"));
  q.quantize_op_types = cfg.Strs("SLIM.quantize_op_types");
  q.not_quant_pattern = cfg.Strs("SLIM.not_quant_pattern");
  q.window_size = static_cast<int>(cfg.Int("SLIM.window_size"));
  q.moving_rate = static_cast<float>(cfg.Float("SLIM.moving_rate"));
  q.fold_bn = cfg.Bool("SLIM.fold_bn");
  q.quant_add = cfg.Bool("SLIM.quant_add");
  return q;
}

}  // namespace segqat::quant
