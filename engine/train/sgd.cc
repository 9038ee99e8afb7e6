#include "engine/train/sgd.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace segqat {

MomentumSGD::MomentumSGD(std::vector<std::pair<std::string, at::Tensor>> params, double momentum,
                         double weight_decay)
    : params_(std::move(params)), momentum_(momentum), weight_decay_(weight_decay) {}

void MomentumSGD::ZeroGrad() {
  for (auto& [name, p] : params_) {
    if (p.mutable_grad().defined()) p.mutable_grad().zero_();
  }
}

void MomentumSGD::Step(double lr) {
  at::NoGradGuard no_grad;
  for (auto& [name, p] : params_) {
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    at::Tensor g = weight_decay_ != 0 ? grad.add(p, weight_decay_) : grad.clone();
    auto it = buffers_.find(name);
    if (it == buffers_.end()) {
      it = buffers_.emplace(name, g).first;
    } else {
      it->second.mul_(momentum_).add_(g);
    }
    p.add_(it->second, -lr);
  }
}

absl::Status MomentumSGD::LoadMomentumBuffers(const std::map<std::string, at::Tensor>& buffers) {
  std::map<std::string, at::Tensor> loaded;
  for (const auto& [name, buf] : buffers) {
    auto it = std::find_if(params_.begin(), params_.end(),
                           [&](const auto& p) { return p.first == name; });
    if (it == params_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer state names unknown parameter ", name));
    }
    if (!buf.sizes().equals(it->second.sizes())) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer state for ", name, " has another shape"));
    }
    loaded[name] = buf.to(it->second.options()).clone();
  }
  buffers_ = std::move(loaded);
  return absl::OkStatus();
}

}  // namespace segqat
