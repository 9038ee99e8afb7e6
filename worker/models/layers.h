// Building blocks shared by the backbone and the head: conv + BN + activation
// as a Sequential whose children are named "0", "1", "2" like torchvision's
// Conv2dNormActivation, so parameter names line up with PyTorch state dicts.
#ifndef SEGQAT_WORKER_MODELS_LAYERS_H_
#define SEGQAT_WORKER_MODELS_LAYERS_H_

#include <torch/nn/modules/container/sequential.h>

#include "worker/quant/quant_layers.h"

namespace segqat::models {

struct NormOptions {
  double eps = 1e-5;
  double momentum = 0.01;  // PyTorch convention: running = (1-m)*running + m*batch
};

enum class Activation { kNone, kReLU, kReLU6 };

// A Sequential with a plain Tensor -> Tensor forward, so blocks nest
// (torch::nn::Sequential cannot hold another Sequential).
class BlockImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  at::Tensor forward(const at::Tensor& x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(Block);

// conv (no bias) -> BN -> activation.
Block ConvBnAct(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                int64_t dilation, int64_t groups, Activation act,
                                const NormOptions& norm);

// Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (PaddleSeg's
// separable conv), or a plain 3x3 conv -> BN -> ReLU when separable is false.
Block Conv3x3(int64_t in, int64_t out, int64_t dilation, bool separable,
                              const NormOptions& norm);

}  // namespace segqat::models

#endif  // SEGQAT_WORKER_MODELS_LAYERS_H_
