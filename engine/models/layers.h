// Building blocks shared by the backbone and the head: conv + BN + activation
// as a Sequential whose children are named "0", "1", "2" like torchvision's
// Conv2dNormActivation, so parameter names line up with PyTorch state dicts.
#ifndef SEGQAT_ENGINE_MODELS_LAYERS_H_
#define SEGQAT_ENGINE_MODELS_LAYERS_H_

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>

#include <functional>

#include "engine/quant/quant_layers.h"

namespace segqat::models {

struct NormOptions {
  double eps = 1e-5;
  double momentum = 0.01;  // PyTorch convention: running = (1-m)*running + m*batch
};

// Sums a tensor over every rank of a data-parallel world, differentiably
// (its backward sums the gradients the same way). The trainer supplies it
// (engine/train/sync_batch_norm.h); the models know nothing of ranks.
using WorldSum = std::function<at::Tensor(const at::Tensor&)>;

// BatchNorm2d, plus TRAIN.SYNC_BATCH_NORM: with a WorldSum set, training-mode
// statistics are those of the global batch (every rank's slice together), as
// one process would compute them on the whole batch; the running statistics
// follow them. Without one, or in eval mode, it is torch's BatchNorm2d.
// Same parameters and buffers, so checkpoints do not change.
class SyncBatchNorm2dImpl : public torch::nn::BatchNorm2dImpl {
 public:
  using BatchNorm2dImpl::BatchNorm2dImpl;
  at::Tensor forward(const at::Tensor& x);
  void set_world_sum(WorldSum sum) { world_sum_ = std::move(sum); }
  void pretty_print(std::ostream& stream) const override;

 private:
  WorldSum world_sum_;
};
TORCH_MODULE(SyncBatchNorm2d);

// Sets (or, with an empty one, clears) the WorldSum of every
// SyncBatchNorm2d in `model`; returns how many there are.
int SetWorldSum(torch::nn::Module& model, const WorldSum& sum);

// A SyncBatchNorm2d with these options.
SyncBatchNorm2d BatchNorm(int64_t channels, const NormOptions& norm);

enum class Activation { kNone, kReLU, kReLU6 };

// A Sequential with a plain Tensor -> Tensor forward, so blocks nest
// (torch::nn::Sequential cannot hold another Sequential). In eval mode each
// [conv, batch norm?, ReLU/ReLU6?] run computes the deployed graph's conv
// node (exports::DeployedConv, exports::RunConv) as the INT8 engine does: a
// fake-quant model in eval then gives the converted model's codes exactly.
// Training and abs_max activations (no fixed scale) run the modules one by
// one; calibration's observers see each conv's input, which then computes
// in float as the deployed float node does.
class BlockImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Block);

// conv.forward(x), or in eval mode the deployed conv node as a Block computes it.
at::Tensor ConvForward(quant::QConv2dImpl& conv, const at::Tensor& x);

// conv (no bias) -> BN -> activation.
Block ConvBnAct(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                int64_t groups, Activation act, const NormOptions& norm);

// Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (PaddleSeg's
// separable conv), or a plain 3x3 conv -> BN -> ReLU when separable is false.
Block Conv3x3(int64_t in, int64_t out, int64_t dilation, bool separable, const NormOptions& norm);

}  // namespace segqat::models

#endif  // SEGQAT_ENGINE_MODELS_LAYERS_H_
