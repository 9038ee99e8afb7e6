#include "engine/quant/quant_add.h"

#include <ATen/ATen.h>

#include "engine/quant/codes_probe.h"
#include "engine/quant/fake_quant.h"

namespace segqat::quant {

void QAddImpl::EnableQuant(const QuantConfig& config) {
  if (!a_quant_) {
    auto make = [&] {
      return ActivationQuantizer(config.activation_type, config.activation_bits, config.moving_rate,
                                 config.window_size);
    };
    a_quant_ = register_module("a_quant", make());
    b_quant_ = register_module("b_quant", make());
    out_quant_ = register_module("out_quant", make());
  }
  mode_ = LayerMode::kFakeQuant;
}

void QAddImpl::Convert() {
  TORCH_CHECK(mode_ == LayerMode::kFakeQuant, "QAdd::Convert needs a fake-quant add");
  ConvertedAdd c;
  if (out_quant_->type() != ActivationQuantType::kAbsMax) {
    c.a_scale = a_quant_->ScaleFor(at::Tensor());
    c.b_scale = b_quant_->ScaleFor(at::Tensor());
    c.out_scale = out_quant_->ScaleFor(at::Tensor());
  }
  c.activation_bits = out_quant_->bits();
  converted_ = c;
  mode_ = LayerMode::kConverted;
}

at::Tensor QAddImpl::forward(const at::Tensor& a, const at::Tensor& b) {
  if (mode_ == LayerMode::kFloat) return a + b;
  if (mode_ == LayerMode::kFakeQuant && !simulated_ && !out_quant_->observing()) return a + b;
  // Converted: the quantizers are in eval mode, on their fixed scales.
  at::Tensor y = out_quant_->forward(a_quant_->forward(a) + b_quant_->forward(b));
  if (const CodesProbe* probe = CurrentCodesProbe();
      probe && !is_training() && out_quant_->type() != ActivationQuantType::kAbsMax) {
    (*probe)(*this, QuantizeToInt(y.detach(), out_quant_->ScaleFor(y), out_quant_->bits()));
  }
  return y;
}

}  // namespace segqat::quant
