// A residual add that can be quantized (SLIM.quant_add), as the deployed
// graph computes it: both addends and the sum are fake-quantized, each by its
// own activation quantizer,
//   y = Q_out(Q_a(a) + Q_b(b))
// so that a converted model keeps the sum in int8 and the conv that feeds
// it (a MobileNetV2 projection) can requantize its output in its kernel.
// Modes as QuantizableLayer's: float (a + b, no state), fake quant (the
// quantizers, submodules "a_quant", "b_quant", "out_quant"), converted (the
// scales fixed). Not thread-safe (modules never are).
#ifndef SEGQAT_ENGINE_QUANT_QUANT_ADD_H_
#define SEGQAT_ENGINE_QUANT_QUANT_ADD_H_

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <optional>

#include "engine/quant/activation_quantizer.h"
#include "engine/quant/quant_config.h"
#include "engine/quant/quant_layers.h"

namespace segqat::quant {

// What a converted add computes with: the quantizers' scales (s, not s/bin;
// 0 with abs_max activations, whose scale is per batch).
struct ConvertedAdd {
  float a_scale = 0, b_scale = 0, out_scale = 0;
  int activation_bits = 8;
};

class QAddImpl : public torch::nn::Module {
 public:
  at::Tensor forward(const at::Tensor& a, const at::Tensor& b);
  // Float -> fake quant (idempotent).
  void EnableQuant(const QuantConfig& config);
  // Fake quant -> converted. REQUIRES: mode() == kFakeQuant.
  void Convert();
  LayerMode mode() const { return mode_; }
  const std::optional<ConvertedAdd>& converted() const { return converted_; }
  // As QuantizableLayer::set_simulated: false adds in float.
  void set_simulated(bool on) { simulated_ = on; }
  bool simulated() const { return simulated_; }

 private:
  LayerMode mode_ = LayerMode::kFloat;
  bool simulated_ = true;
  ActivationQuantizer a_quant_{nullptr}, b_quant_{nullptr}, out_quant_{nullptr};
  std::optional<ConvertedAdd> converted_;
};
TORCH_MODULE(QAdd);

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_QUANT_ADD_H_
