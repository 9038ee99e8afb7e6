// PaddleSlim's quant_aware configuration, read from the SLIM.* config keys.
#ifndef SEGQAT_ENGINE_QUANT_QUANT_CONFIG_H_
#define SEGQAT_ENGINE_QUANT_QUANT_CONFIG_H_

#include <string>
#include <vector>

#include "engine/config/config.h"

namespace segqat::quant {

enum class WeightQuantType { kChannelWiseAbsMax, kAbsMax };
enum class ActivationQuantType { kMovingAverageAbsMax, kAbsMax, kRangeAbsMax };

struct QuantConfig {
  WeightQuantType weight_type = WeightQuantType::kChannelWiseAbsMax;
  ActivationQuantType activation_type = ActivationQuantType::kMovingAverageAbsMax;
  int weight_bits = 8;
  int activation_bits = 8;
  std::vector<std::string> quantize_op_types{"conv2d", "depthwise_conv2d", "mul"};
  std::vector<std::string> not_quant_pattern{"skip_quant"};
  int window_size = 10000;
  float moving_rate = 0.9f;
  // Quantize each conv's weight with the batch norm that follows it folded
  // in (the weights exports carry); false quantizes the raw weight, as PaddleSlim.
  bool fold_bn = true;
  // Quantize residual adds (both addends and the sum), as the deployed int8
  // graph computes them; false leaves them float, as PaddleSlim does.
  bool quant_add = true;

  // From SLIM.*; the config has been validated, so this cannot fail.
  static QuantConfig FromConfig(const Config& cfg);
};

// 2^(bits-1) - 1: 127 for 8 bits.
inline float BinCount(int bits) { return static_cast<float>((1 << (bits - 1)) - 1); }

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_QUANT_CONFIG_H_
