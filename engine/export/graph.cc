#include "engine/export/graph.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "engine/quant/fake_quant.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_config.h"
#include "engine/quant/quant_layers.h"

namespace segqat::exports {

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kNormalize:
      return "normalize";
    case OpKind::kConv:
      return "conv";
    case OpKind::kAdd:
      return "add";
    case OpKind::kConcat:
      return "concat";
    case OpKind::kMean:
      return "mean";
    case OpKind::kExpandLike:
      return "expand";
    case OpKind::kResizeLike:
      return "resize";
  }
  return "?";
}

int DeployGraph::QuantizedConvCount() const {
  int n = 0;
  for (const Node& node : nodes) n += node.kind == OpKind::kConv && node.conv.quantized();
  return n;
}

int64_t DeployGraph::WeightBytes() const {
  int64_t bytes = 0;
  for (const Node& node : nodes) {
    if (node.kind != OpKind::kConv) continue;
    const ConvSpec& c = node.conv;
    bytes += c.bias.numel() * 4;
    bytes +=
        c.quantized() ? c.weight_int8.numel() + c.weight_scale.numel() * 4 : c.weight.numel() * 4;
  }
  return bytes;
}

int64_t DeployGraph::FloatWeightBytes() const {
  int64_t bytes = 0;
  for (const Node& node : nodes) {
    if (node.kind == OpKind::kConv)
      bytes += (node.conv.weight.numel() + node.conv.bias.numel()) * 4;
  }
  return bytes;
}

absl::Status ValidateGraph(const DeployGraph& graph) {
  std::set<std::string> defined{graph.input};
  for (const Node& n : graph.nodes) {
    auto fail = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", n.name, " (", OpKindName(n.kind), "): ", what));
    };
    for (const std::string& in : n.inputs) {
      if (!defined.count(in)) return fail(absl::StrCat("input ", in, " is not computed before it"));
    }
    const size_t want =
        n.kind == OpKind::kAdd || n.kind == OpKind::kExpandLike || n.kind == OpKind::kResizeLike ? 2
        : n.kind == OpKind::kConcat ? n.inputs.size()
                                    : 1;
    if (n.inputs.size() != want || n.inputs.empty()) {
      return fail(absl::StrCat("has ", n.inputs.size(), " inputs, expected ", want));
    }
    if (n.kind == OpKind::kNormalize && (n.mul.size() != 3 || n.add.size() != 3)) {
      return fail("needs three channel factors");
    }
    if (n.kind == OpKind::kConv) {
      const ConvSpec& c = n.conv;
      if (!c.weight.defined() || c.weight.dim() != 4 || !c.bias.defined() ||
          c.bias.numel() != c.weight.size(0)) {
        return fail("weight and bias do not fit");
      }
      if (c.quantized() && (!c.weight_int8.defined() || c.weight_int8.sizes() != c.weight.sizes() ||
                            c.weight_scale.numel() != c.weight.size(0) ||
                            (c.weight_scale <= 0).any().item<bool>())) {
        return fail("int8 weight, scales and float weight do not fit");
      }
      if (c.groups < 1 || c.weight.size(0) % c.groups != 0) return fail("bad group count");
    }
    if (n.kind == OpKind::kAdd && n.sum.quantized() &&
        !(n.sum.a_scale > 0 && n.sum.b_scale > 0 && std::isfinite(n.sum.a_scale) &&
          std::isfinite(n.sum.b_scale) && std::isfinite(n.sum.output_scale))) {
      return fail("a quantized add needs three positive finite steps");
    }
    if (!defined.insert(n.output).second) return fail(absl::StrCat(n.output, " is written twice"));
  }
  if (!defined.count(graph.output)) {
    return absl::InvalidArgumentError(absl::StrCat("no node computes ", graph.output));
  }
  return absl::OkStatus();
}

void PlanQuantizedOutputs(DeployGraph& graph) {
  std::map<std::string, std::vector<const Node*>> consumers;
  for (const Node& n : graph.nodes) {
    for (const std::string& in : n.inputs) consumers[in].push_back(&n);
  }
  for (Node& n : graph.nodes) {
    n.conv.output_scale = 0;
    if (n.kind != OpKind::kConv || !n.conv.quantized() || n.output == graph.output) continue;
    const auto& users = consumers[n.output];
    if (users.empty()) continue;
    // The step each consumer quantizes this tensor with (0: none).
    auto step_of = [&](const Node* u) -> float {
      if (u->kind == OpKind::kConv) return u->conv.quantized() ? u->conv.input_scale : 0.f;
      if (u->kind != OpKind::kAdd || !u->sum.quantized()) return 0.f;
      const float a = u->inputs[0] == n.output ? u->sum.a_scale : 0.f;
      const float b = u->inputs[1] == n.output ? u->sum.b_scale : 0.f;
      return a > 0 && b > 0 && a != b ? 0.f : a > 0 ? a : b;
    };
    const float scale = step_of(users.front());
    bool all = scale > 0;
    for (const Node* u : users) all = all && step_of(u) == scale;
    // After ReLU6 the output is quantized in place of the clip at 6 only when
    // its range (127 steps) ends at or below 6.
    if (n.conv.act == Act::kReLU6 && scale * static_cast<float>(graph.max_code()) > 6.0f) {
      all = false;
    }
    if (all) n.conv.output_scale = scale;
  }
}

std::set<std::string> NonNegativeTensors(const DeployGraph& graph) {
  std::set<std::string> out;
  for (const Node& n : graph.nodes) {
    bool all_inputs = !n.inputs.empty();
    for (const std::string& in : n.inputs) all_inputs = all_inputs && out.count(in);
    bool non_negative = false;
    switch (n.kind) {
      case OpKind::kConv:
        non_negative = n.conv.act != Act::kNone;
        break;
      case OpKind::kConcat:
      case OpKind::kAdd:
      case OpKind::kMean:
        non_negative = all_inputs;
        break;
      case OpKind::kExpandLike:
      case OpKind::kResizeLike:
        non_negative = out.count(n.inputs[0]) > 0;
        break;
      case OpKind::kNormalize:
        break;
    }
    if (non_negative) out.insert(n.output);
  }
  return out;
}

int64_t ActivationZeroPoint(bool non_negative, int64_t max_code) {
  return non_negative ? 0 : max_code + 1;
}

bool ExactInX86Int8Kernels(int64_t zero_point, int64_t max_code) {
  return zero_point + max_code <= 127;
}

std::string GraphBuilder::Emit(Node node) {
  std::string out = node.output;
  graph_->nodes.push_back(std::move(node));
  return out;
}

std::string GraphBuilder::Normalize(const std::string& x, std::vector<float> mul,
                                    std::vector<float> add) {
  Node n;
  n.kind = OpKind::kNormalize;
  n.name = "normalize";
  n.inputs = {x};
  n.output = "normalized";
  n.mul = std::move(mul);
  n.add = std::move(add);
  return Emit(std::move(n));
}

ConvSpec DeployedConv(const std::string& name, const quant::QConv2dImpl& conv,
                      const torch::nn::BatchNorm2dImpl* bn, Act act, int* activation_bits) {
  at::NoGradGuard no_grad;
  const auto& o = conv.options();
  ConvSpec s;
  s.stride = o.stride();
  s.padding = o.padding();
  s.dilation = o.dilation();
  s.groups = o.groups();
  s.act = act;
  const auto f32 = conv.weight.options().dtype(at::kFloat);
  at::Tensor factor =
      bn ? quant::BatchNormScale(*bn).detach().to(at::kFloat) : at::ones({o.out()}, f32);
  at::Tensor bias = conv.bias.defined() ? conv.bias.detach() : at::zeros({o.out()}, f32);
  if (bn) {
    bias = factor * (bias - bn->running_mean.detach()) +
           (bn->bias.defined() ? bn->bias.detach() : at::zeros_like(bias));
  }
  s.bias = bias.contiguous();
  std::optional<quant::ConvertedWeights> converted;
  if (conv.mode() == quant::LayerMode::kConverted) converted = *conv.converted();
  if (conv.mode() == quant::LayerMode::kFakeQuant && conv.simulated()) {
    converted = conv.Conversion();
  }
  if (!converted) {
    // Float (or a fake-quant layer a sensitivity scan computes in float: no
    // batch norm folded into its quantization either).
    s.weight = (conv.weight.detach() * factor.view({-1, 1, 1, 1})).contiguous();
    return s;
  }
  const quant::ConvertedWeights& c = *converted;
  if (c.weight_bits != 8 || (c.activation_bits != 8 && c.activation_bits != 7)) {
    throw TraceError(absl::StrCat(name,
                                  ": exports are int8 (activations 8 or 7 bits); the "
                                  "layer was trained with ",
                                  c.weight_bits, "-bit weights and ", c.activation_bits,
                                  "-bit activations"));
  }
  if (c.input_scale <= 0) {
    throw TraceError(
        absl::StrCat(name,
                     ": abs_max activations have no fixed scale to export; train with "
                     "SLIM.activation_quantize_type moving_average_abs_max or range_abs_max"));
  }
  if (activation_bits) *activation_bits = c.activation_bits;
  at::Tensor codes = c.weight_int8.to(at::kInt);
  at::Tensor scale = c.weight_scale.to(at::kFloat) / quant::BinCount(c.weight_bits);
  if (bn && !c.bn_scale.defined()) {
    // QAT quantized the raw weight; the batch norm's factor joins the scale
    // (its sign the codes), which leaves the computed values unchanged.
    codes = codes * at::where(factor < 0, -1, 1).to(at::kInt).view({-1, 1, 1, 1});
    scale = scale * factor.abs();
  }
  // An all-zero channel has scale 0; any positive scale gives it the same zeros.
  scale = at::where(scale > 0, scale, at::full_like(scale, 1.0f / 127));
  s.weight_int8 = codes.to(at::kChar).contiguous();
  s.weight_scale = scale.contiguous();
  s.weight = (codes.to(at::kFloat) * scale.view({-1, 1, 1, 1})).contiguous();
  s.input_scale = quant::ActivationStep(c.input_scale, quant::BinCount(c.activation_bits));
  // The bias on the int32 grid of the integer sums (step input_scale *
  // weight_scale), as integer kernels (ONNX Runtime's QLinearConv,
  // oneDNN) add it: every runtime then adds the same bias.
  at::Tensor step = s.weight_scale * s.input_scale;
  s.bias = (at::round(s.bias / step).clamp(-kMaxBiasCode, kMaxBiasCode) * step).contiguous();
  return s;
}

std::string GraphBuilder::Conv(const std::string& name, const quant::QConv2dImpl& conv,
                               const torch::nn::BatchNorm2dImpl* bn, Act act,
                               const std::string& x) {
  if (conv.mode() == quant::LayerMode::kFakeQuant) {
    throw TraceError(absl::StrCat(name, " is fake-quantized: convert the model before export"));
  }
  Node n;
  n.kind = OpKind::kConv;
  n.name = name;
  n.inputs = {x};
  n.output = name;
  int bits = 0;
  n.conv = DeployedConv(name, conv, bn, act, &bits);
  if (n.conv.quantized()) {
    if (graph_->QuantizedConvCount() == 0) graph_->activation_bits = bits;
    if (bits != graph_->activation_bits) {
      throw TraceError(absl::StrCat(name, ": ", bits, "-bit activations where ",
                                    "the layers before have ", graph_->activation_bits));
    }
  }
  ConvSpec& s = n.conv;
  for (at::Tensor* t : {&s.weight, &s.bias, &s.weight_int8, &s.weight_scale}) {
    if (t->defined()) *t = t->cpu();
  }
  return Emit(std::move(n));
}

std::string GraphBuilder::Add(const std::string& name, const std::string& a, const std::string& b,
                              const quant::QAddImpl* q) {
  Node n;
  n.kind = OpKind::kAdd;
  n.name = name;
  n.inputs = {a, b};
  n.output = name;
  if (q && q->mode() == quant::LayerMode::kFakeQuant) {
    throw TraceError(name + ": the add is quantized but not converted");
  }
  if (q && q->converted() && q->converted()->out_scale > 0) {
    const quant::ConvertedAdd& c = *q->converted();
    const float bin = quant::BinCount(c.activation_bits);
    n.sum.a_scale = quant::ActivationStep(c.a_scale, bin);
    n.sum.b_scale = quant::ActivationStep(c.b_scale, bin);
    n.sum.output_scale = quant::ActivationStep(c.out_scale, bin);
  }
  return Emit(std::move(n));
}

std::string GraphBuilder::Concat(const std::string& name, const std::vector<std::string>& inputs) {
  Node n;
  n.kind = OpKind::kConcat;
  n.name = name;
  n.inputs = inputs;
  n.output = name;
  return Emit(std::move(n));
}

std::string GraphBuilder::Mean(const std::string& name, const std::string& x) {
  Node n;
  n.kind = OpKind::kMean;
  n.name = name;
  n.inputs = {x};
  n.output = name;
  return Emit(std::move(n));
}

std::string GraphBuilder::ExpandLike(const std::string& name, const std::string& x,
                                     const std::string& ref) {
  Node n;
  n.kind = OpKind::kExpandLike;
  n.name = name;
  n.inputs = {x, ref};
  n.output = name;
  return Emit(std::move(n));
}

std::string GraphBuilder::ResizeLike(const std::string& name, const std::string& x,
                                     const std::string& ref) {
  Node n;
  n.kind = OpKind::kResizeLike;
  n.name = name;
  n.inputs = {x, ref};
  n.output = name;
  return Emit(std::move(n));
}

std::string GraphBuilder::Sequential(const std::string& name, const torch::nn::Module& module,
                                     const std::string& x) {
  const auto children = module.named_children();
  std::string h = x;
  for (size_t i = 0; i < children.size(); ++i) {
    const std::string child_name = absl::StrCat(name, ".", children[i].key());
    const auto& child = children[i].value();
    if (auto conv = std::dynamic_pointer_cast<quant::QConv2dImpl>(child)) {
      const torch::nn::BatchNorm2dImpl* bn = nullptr;
      if (i + 1 < children.size()) {
        bn = dynamic_cast<const torch::nn::BatchNorm2dImpl*>(children[i + 1].value().get());
        if (bn) ++i;
      }
      Act act = Act::kNone;
      if (i + 1 < children.size()) {
        const auto* next = children[i + 1].value().get();
        if (dynamic_cast<const torch::nn::ReLUImpl*>(next)) act = Act::kReLU;
        if (dynamic_cast<const torch::nn::ReLU6Impl*>(next)) act = Act::kReLU6;
        if (act != Act::kNone) ++i;
      }
      h = Conv(child_name, *conv, bn, act, h);
    } else if (std::dynamic_pointer_cast<torch::nn::DropoutImpl>(child)) {
      continue;  // identity in inference
    } else if (dynamic_cast<const Traceable*>(child.get()) || !child->children().empty()) {
      h = Module(child_name, *child, h);
    } else {
      throw TraceError(absl::StrCat(child_name, ": cannot export a ", child->name(),
                                    " that does not follow a conv"));
    }
  }
  return h;
}

std::string GraphBuilder::Module(const std::string& name, const torch::nn::Module& module,
                                 const std::string& x) {
  if (const auto* conv = dynamic_cast<const quant::QConv2dImpl*>(&module)) {
    return Conv(name, *conv, nullptr, Act::kNone, x);
  }
  if (const auto* traceable = dynamic_cast<const Traceable*>(&module)) {
    return traceable->Trace(*this, name, x);
  }
  return Sequential(name, module, x);
}

}  // namespace segqat::exports
