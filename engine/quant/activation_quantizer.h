// The activation quantizer that a quantizable layer puts before its input
// (PaddleSlim's fake_quantize_* + fake_dequantize_max_abs pair).
//
// State lives in buffers, so checkpoints carry it:
//   scale            the current scale s (starts at 0.001 as in PaddleSlim)
//   state, accum     moving_average_abs_max: state = r*state + 1,
//                    accum = r*accum + max|x|, s = accum/state (both start at 1)
//   window, iter     range_abs_max: the last window_size batch maxima
// In training the scale is updated from the batch and the batch is quantized
// with the updated scale; in eval the stored scale is used (abs_max always
// uses the batch's own max|x|).
// Not thread-safe: one forward at a time, like any module with buffers.
#ifndef SEGQAT_ENGINE_QUANT_ACTIVATION_QUANTIZER_H_
#define SEGQAT_ENGINE_QUANT_ACTIVATION_QUANTIZER_H_

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>

#include "engine/quant/quant_config.h"

namespace segqat::quant {

class ActivationQuantizerImpl : public torch::nn::Module {
 public:
  ActivationQuantizerImpl(ActivationQuantType type, int bits, float moving_rate, int window_size);

  // x_hat, differentiable with identity STE.
  at::Tensor forward(const at::Tensor& x);
  // The scale the next call would use in eval mode (for abs_max: unknown
  // until the batch is seen, so the caller passes the batch).
  float ScaleFor(const at::Tensor& x) const;

  // Post-training calibration (engine/quant/calibration.h): while an
  // observer is set, forward hands it the input and returns the input
  // unquantized. Null removes it.
  void set_observer(std::function<void(const at::Tensor&)> observer) {
    observer_ = std::move(observer);
  }
  bool observing() const { return static_cast<bool>(observer_); }
  // Fixes the scale as calibration chose it: eval uses s, and the moving
  // average / window state restarts from s, so QAT can continue from it.
  void SetScale(float s);

  ActivationQuantType type() const { return type_; }
  int bits() const { return bits_; }

 private:
  float UpdateScale(const at::Tensor& x);

  ActivationQuantType type_;
  int bits_;
  float moving_rate_;
  int window_size_;
  at::Tensor scale_, state_, accum_, window_, iter_;
  std::function<void(const at::Tensor&)> observer_;
};
TORCH_MODULE(ActivationQuantizer);

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_ACTIVATION_QUANTIZER_H_
