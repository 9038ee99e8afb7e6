#include "engine/quant/activation_quantizer.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "engine/quant/fake_quant.h"

namespace segqat::quant {

ActivationQuantizerImpl::ActivationQuantizerImpl(ActivationQuantType type, int bits,
                                                 float moving_rate, int window_size)
    : type_(type), bits_(bits), moving_rate_(moving_rate), window_size_(window_size) {
  auto f = at::TensorOptions().dtype(at::kFloat);
  scale_ = register_buffer("scale", at::full({1}, 0.001f, f));
  if (type_ == ActivationQuantType::kMovingAverageAbsMax) {
    state_ = register_buffer("state", at::ones({1}, f));
    accum_ = register_buffer("accum", at::ones({1}, f));
  } else if (type_ == ActivationQuantType::kRangeAbsMax) {
    window_ = register_buffer("window", at::zeros({window_size_}, f));
    iter_ = register_buffer("iter", at::zeros({1}, at::TensorOptions().dtype(at::kLong)));
  }
}

float ActivationQuantizerImpl::UpdateScale(const at::Tensor& x) {
  const float cur = AbsMax(x);
  float s = cur;
  // The buffers are tiny; they are updated on the CPU and copied back so the
  // stored values are exactly the float32 arithmetic PaddleSlim does.
  if (type_ == ActivationQuantType::kMovingAverageAbsMax) {
    const float r = moving_rate_;
    float state = r * state_.item<float>() + 1.f;
    float accum = r * accum_.item<float>() + cur;
    s = accum / state;
    state_.fill_(state);
    accum_.fill_(accum);
  } else if (type_ == ActivationQuantType::kRangeAbsMax) {
    at::Tensor window = window_.to(at::kCPU);
    float* w = window.data_ptr<float>();
    const int64_t it = iter_.item<int64_t>();
    const int64_t idx = it % window_size_;
    const float removed = w[idx];
    float max = scale_.item<float>();
    w[idx] = cur;
    if (max < cur) {
      max = cur;
    } else if (std::fabs(removed - max) < 1e-6f) {
      const int64_t size = std::min<int64_t>(it + 1, window_size_);
      max = *std::max_element(w, w + size);
    }
    s = max;
    window_.copy_(window);
    iter_.fill_(it + 1);
  }
  scale_.fill_(s);
  return s;
}

float ActivationQuantizerImpl::ScaleFor(const at::Tensor& x) const {
  if (type_ == ActivationQuantType::kAbsMax) return AbsMax(x);
  return scale_.item<float>();
}

void ActivationQuantizerImpl::SetScale(float s) {
  at::NoGradGuard no_grad;
  scale_.fill_(s);
  if (type_ == ActivationQuantType::kMovingAverageAbsMax) {
    state_.fill_(1.f);
    accum_.fill_(s);
  } else if (type_ == ActivationQuantType::kRangeAbsMax) {
    window_.zero_();
    window_[0].fill_(s);
    iter_.fill_(1);
  }
}

at::Tensor ActivationQuantizerImpl::forward(const at::Tensor& x) {
  if (observer_) {
    observer_(x.detach());
    return x;
  }
  float s;
  {
    at::NoGradGuard no_grad;
    s = is_training() ? UpdateScale(x) : ScaleFor(x);
  }
  return FakeQuant(x, s, bits_);
}

}  // namespace segqat::quant
