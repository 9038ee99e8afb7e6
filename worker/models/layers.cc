#include "worker/models/layers.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>

namespace segqat::models {

Block ConvBnAct(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                int64_t dilation, int64_t groups, Activation act,
                                const NormOptions& norm) {
  Block seq;
  seq->push_back(quant::QConv2d(quant::QConv2dOptions(in, out, kernel)
                                    .stride(stride)
                                    .padding((kernel - 1) / 2 * dilation)
                                    .dilation(dilation)
                                    .groups(groups)));
  seq->push_back(torch::nn::BatchNorm2d(
      torch::nn::BatchNorm2dOptions(out).eps(norm.eps).momentum(norm.momentum)));
  if (act == Activation::kReLU6) seq->push_back(torch::nn::ReLU6());
  if (act == Activation::kReLU) seq->push_back(torch::nn::ReLU());
  return seq;
}

Block Conv3x3(int64_t in, int64_t out, int64_t dilation, bool separable,
                              const NormOptions& norm) {
  if (!separable) return ConvBnAct(in, out, 3, 1, dilation, 1, Activation::kReLU, norm);
  Block seq;
  seq->push_back(ConvBnAct(in, in, 3, 1, dilation, in, Activation::kReLU, norm));
  seq->push_back(ConvBnAct(in, out, 1, 1, 1, 1, Activation::kReLU, norm));
  return seq;
}

}  // namespace segqat::models
