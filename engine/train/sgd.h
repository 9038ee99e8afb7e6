// SGD with momentum and L2 weight decay, the update PaddlePaddle's momentum
// optimizer and torch.optim.SGD (dampening 0) both make:
//   g = grad + weight_decay * p;  v = momentum * v + g;  p -= lr * v
// (v starts as the first g). Momentum buffers are keyed by parameter name so
// a checkpoint restores them exactly. Not thread-safe.
#ifndef SEGQAT_ENGINE_TRAIN_SGD_H_
#define SEGQAT_ENGINE_TRAIN_SGD_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace segqat {

class MomentumSGD {
 public:
  MomentumSGD(std::vector<std::pair<std::string, at::Tensor>> params, double momentum,
              double weight_decay);
  void ZeroGrad();
  // One update with learning rate lr; parameters without a gradient are left alone.
  void Step(double lr);
  const std::map<std::string, at::Tensor>& momentum_buffers() const { return buffers_; }
  // Restores buffers saved from momentum_buffers(); InvalidArgument naming the
  // parameter when a name is unknown or a shape differs.
  absl::Status LoadMomentumBuffers(const std::map<std::string, at::Tensor>& buffers);

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  double momentum_, weight_decay_;
  std::map<std::string, at::Tensor> buffers_;
};

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_SGD_H_
