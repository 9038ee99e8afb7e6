#include "engine/models/layers.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>

#include <optional>
#include <ostream>

#include "engine/export/deployed_ops.h"
#include "engine/quant/codes_probe.h"

// LibTorch 1.13 defines BatchNormImplBase<2, ...>::pretty_print in its
// library but does not export it, and a class derived from BatchNorm2dImpl
// needs it for its construction vtables: this is it.
template <>
void torch::nn::BatchNormImplBase<2, torch::nn::BatchNorm2dImpl>::pretty_print(
    std::ostream& stream) const {
  stream << "torch::nn::BatchNorm2d(" << options.num_features() << ")";
}

namespace segqat::models {

at::Tensor SyncBatchNorm2dImpl::forward(const at::Tensor& x) {
  if (!world_sum_ || !is_training()) return BatchNorm2dImpl::forward(x);
  TORCH_CHECK(x.dim() == 4, "SyncBatchNorm2d: expected a 4-D input, got ", x.dim(), "-D");
  const int64_t c = x.size(1);
  // Sums of x - shift and of its square, with shift = running_mean: it is the
  // same on every rank (broadcast at the start, then updated from the same
  // global statistics), and it keeps E[x^2] - E[x]^2 clear of cancellation.
  const at::Tensor shift = running_mean.detach().view({1, c, 1, 1});
  const at::Tensor d = x - shift;
  const at::Tensor count = at::full({1}, static_cast<double>(x.numel() / c), x.options());
  at::Tensor local = at::cat({d.sum({0, 2, 3}), (d * d).sum({0, 2, 3}), count});
  at::Tensor global = world_sum_(local);
  const at::Tensor n = global.narrow(0, 2 * c, 1);
  const at::Tensor mean_d = global.narrow(0, 0, c) / n;
  const at::Tensor var = (global.narrow(0, c, c) / n - mean_d * mean_d).clamp_min(0);
  const at::Tensor mean = mean_d + shift.view({c});
  {
    at::NoGradGuard no_grad;
    const double m = options.momentum().value_or(0.1);
    const double total = n.item<double>();
    running_mean.mul_(1 - m).add_(mean.detach(), m);
    running_var.mul_(1 - m).add_(var.detach() * (total / std::max(1.0, total - 1)), m);
    num_batches_tracked.add_(1);
  }
  at::Tensor y = (x - mean.view({1, c, 1, 1})) * at::rsqrt(var + options.eps()).view({1, c, 1, 1});
  if (options.affine()) y = y * weight.view({1, c, 1, 1}) + bias.view({1, c, 1, 1});
  return y;
}

void SyncBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "segqat::models::SyncBatchNorm2d(" << options.num_features()
         << ", eps=" << options.eps() << ", momentum=" << options.momentum().value_or(0.1)
         << (world_sum_ ? ", synchronised" : "") << ")";
}

int SetWorldSum(torch::nn::Module& model, const WorldSum& sum) {
  int n = 0;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (auto* bn = dynamic_cast<SyncBatchNorm2dImpl*>(m.get())) {
      bn->set_world_sum(sum);
      ++n;
    }
  }
  return n;
}

namespace {

// The conv node `conv` (with `bn` and `act` after it) deploys to, on x, as
// the INT8 engine computes it; nullopt where the modules must run one by one.
std::optional<at::Tensor> DeployedForward(quant::QConv2dImpl& conv,
                                          const torch::nn::BatchNorm2dImpl* bn, exports::Act act,
                                          const at::Tensor& x) {
  if (conv.mode() == quant::LayerMode::kFakeQuant) {
    const auto& q = conv.input_quantizer();
    // Calibration (which turns every layer's simulation off) hands the input
    // to the observer; the layer then computes in float like any other, so
    // every layer computes the same float model however many it observes.
    if (q->observing()) q.ptr()->forward(x);
    if (conv.simulated() && q->type() == quant::ActivationQuantType::kAbsMax) return std::nullopt;
  }
  if (conv.mode() == quant::LayerMode::kConverted && conv.converted()->input_scale <= 0) {
    return std::nullopt;
  }
  exports::ConvSpec spec;
  int bits = 8;
  try {
    spec = exports::DeployedConv("", conv, bn, act, &bits);
  } catch (const exports::TraceError&) {
    return std::nullopt;  // not deployable (weights not 8-bit): as trained
  }
  const exports::ConvKernel k = exports::PrepareConv(spec, /*on_codes=*/true);
  if (!k.on_codes) return exports::RunConv(spec, k, x);
  const int64_t max_code = (int64_t{1} << (bits - 1)) - 1;
  at::Tensor codes = exports::ActivationCodes(x, spec.input_scale, max_code);
  if (const quant::CodesProbe* probe = quant::CurrentCodesProbe()) (*probe)(conv, codes);
  return exports::RunConv(spec, k, codes);
}

}  // namespace

at::Tensor BlockImpl::forward(const at::Tensor& x) {
  if (is_training()) return SequentialImpl::forward(x);
  at::NoGradGuard no_grad;
  at::Tensor h = x;
  const size_t n = size();
  for (size_t i = 0; i < n; ++i) {
    if (auto* conv = dynamic_cast<quant::QConv2dImpl*>(ptr(i).get())) {
      size_t last = i;
      const torch::nn::BatchNorm2dImpl* bn = nullptr;
      if (last + 1 < n) {
        bn = dynamic_cast<const torch::nn::BatchNorm2dImpl*>(ptr(last + 1).get());
        if (bn) ++last;
      }
      exports::Act act = exports::Act::kNone;
      if (last + 1 < n) {
        const auto* next = ptr(last + 1).get();
        if (dynamic_cast<const torch::nn::ReLUImpl*>(next)) act = exports::Act::kReLU;
        if (dynamic_cast<const torch::nn::ReLU6Impl*>(next)) act = exports::Act::kReLU6;
        if (act != exports::Act::kNone) ++last;
      }
      if (auto y = DeployedForward(*conv, bn, act, h)) {
        h = *std::move(y);
        i = last;
        continue;
      }
    }
    h = (begin() + static_cast<std::ptrdiff_t>(i))->forward(h);
  }
  return h;
}

at::Tensor ConvForward(quant::QConv2dImpl& conv, const at::Tensor& x) {
  if (conv.is_training()) return conv.forward(x);
  at::NoGradGuard no_grad;
  auto y = DeployedForward(conv, nullptr, exports::Act::kNone, x);
  return y ? *std::move(y) : conv.forward(x);
}

SyncBatchNorm2d BatchNorm(int64_t channels, const NormOptions& norm) {
  return SyncBatchNorm2d(
      torch::nn::BatchNorm2dOptions(channels).eps(norm.eps).momentum(norm.momentum));
}

Block ConvBnAct(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                int64_t groups, Activation act, const NormOptions& norm) {
  Block seq;
  seq->push_back(quant::QConv2d(quant::QConv2dOptions(in, out, kernel)
                                    .stride(stride)
                                    .padding((kernel - 1) / 2 * dilation)
                                    .dilation(dilation)
                                    .groups(groups)));
  seq->push_back(BatchNorm(out, norm));
  if (act == Activation::kReLU6) seq->push_back(torch::nn::ReLU6());
  if (act == Activation::kReLU) seq->push_back(torch::nn::ReLU());
  return seq;
}

Block Conv3x3(int64_t in, int64_t out, int64_t dilation, bool separable, const NormOptions& norm) {
  if (!separable) return ConvBnAct(in, out, 3, 1, dilation, 1, Activation::kReLU, norm);
  Block seq;
  seq->push_back(ConvBnAct(in, in, 3, 1, dilation, in, Activation::kReLU, norm));
  seq->push_back(ConvBnAct(in, out, 1, 1, 1, 1, Activation::kReLU, norm));
  return seq;
}

}  // namespace segqat::models
