#include "worker/infer/engine.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "absl/strings/str_cat.h"

namespace segqat::infer {
namespace {

using exports::Act;
using exports::ConvSpec;
using exports::Node;
using exports::OpKind;

constexpr int64_t kZeroPoint = 128;  // quint8 code - 128 = the symmetric int8 value

c10::OperatorHandle QuantizedOp(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

c10::IValue Prepack(const ConvSpec& c) {
  const int64_t out = c.weight_int8.size(0);
  at::Tensor qweight = at::_make_per_channel_quantized_tensor(
      c.weight_int8.contiguous(), c.weight_scale.to(at::kDouble),
      at::zeros({out}, at::TensorOptions().dtype(at::kLong)), 0);
  std::vector<c10::IValue> stack{qweight,
                                 c10::optional<at::Tensor>(c.bias.contiguous()),
                                 c10::List<int64_t>({c.stride, c.stride}),
                                 c10::List<int64_t>({c.padding, c.padding}),
                                 c10::List<int64_t>({c.dilation, c.dilation}),
                                 c.groups};
  QuantizedOp("quantized::conv2d_prepack", "").callBoxed(&stack);
  return stack.at(0);
}

at::Tensor IntegerConv(const at::Tensor& qx, const c10::IValue& packed, double step, bool relu) {
  std::vector<c10::IValue> stack{qx, packed, step, kZeroPoint};
  QuantizedOp(relu ? "quantized::conv2d_relu" : "quantized::conv2d", "new").callBoxed(&stack);
  return stack.at(0).toTensor();
}

at::Tensor Activate(at::Tensor y, Act act) {
  if (act == Act::kReLU) return at::relu_(y);
  if (act == Act::kReLU6) return at::clamp_(y, 0.0, 6.0);
  return y;
}

// A tensor as float, as quint8 at one step, or both (made on demand).
struct Value {
  at::Tensor f, q;
  float step = 0;

  const at::Tensor& Float() {
    if (!f.defined()) f = at::dequantize(q);
    return f;
  }
  // Clamped to +-127 steps first, as the training's quantizer does (quint8
  // alone would keep -128).
  at::Tensor Quantized(float s) {
    if (q.defined() && step == s) return q;
    return at::quantize_per_tensor(
        Float().clamp(-127.0 * s, 127.0 * s).contiguous(at::MemoryFormat::ChannelsLast), s,
        kZeroPoint, at::kQUInt8);
  }
};

at::QEngine ParseQEngine(const std::string& name) {
  if (name == "onednn") return at::QEngine::ONEDNN;
  if (name == "fbgemm") return at::QEngine::FBGEMM;
  return at::QEngine::QNNPACK;
}

}  // namespace

std::string PreferredQEngine() {
  const auto& supported = at::globalContext().supportedQEngines();
  auto has = [&](at::QEngine e) {
    return std::find(supported.begin(), supported.end(), e) != supported.end();
  };
  if (const char* env = std::getenv("SEGQAT_QENGINE"); env && has(ParseQEngine(env))) return env;
  if (has(at::QEngine::ONEDNN)) return "onednn";
  if (has(at::QEngine::FBGEMM)) return "fbgemm";
  if (has(at::QEngine::QNNPACK)) return "qnnpack";
  return "";
}

Engine::Engine(exports::DeployGraph graph, Precision precision)
    : graph_(std::move(graph)), precision_(precision) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(exports::DeployGraph graph,
                                                       Precision precision) {
  if (auto st = exports::ValidateGraph(graph); !st.ok()) return st;
  std::unique_ptr<Engine> e(new Engine(std::move(graph), precision));
  try {
    e->Prepare();
  } catch (const c10::Error& err) {
    return absl::InternalError(
        absl::StrCat("cannot prepare the int8 convolutions: ", err.what_without_backtrace()));
  }
  return e;
}

void Engine::Prepare() {
  packed_.assign(graph_.nodes.size(), c10::IValue());
  if (precision_ != Precision::kInt8) return;
  qengine_ = PreferredQEngine();
  if (qengine_.empty()) return;  // no quantized engine: float convs on the codes
  at::globalContext().setQEngine(ParseQEngine(qengine_));
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& n = graph_.nodes[i];
    if (n.kind == OpKind::kConv && n.conv.quantized() && n.conv.output_scale > 0) {
      packed_[i] = Prepack(n.conv);
      ++integer_convs_;
    }
  }
}

absl::StatusOr<at::Tensor> Engine::Run(const at::Tensor& image) {
  if (!image.defined() || image.dim() != 4 || image.size(1) != 3 ||
      image.scalar_type() != at::kFloat) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model takes a float32 N x 3 x H x W image; got ",
        image.defined() ? absl::StrCat(c10::toString(image.scalar_type()), " ",
                                       c10::str(image.sizes()))
                        : "nothing"));
  }
  at::NoGradGuard no_grad;
  std::map<std::string, Value> values;
  values[graph_.input].f = image.contiguous();
  try {
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& n = graph_.nodes[i];
      Value out;
      switch (n.kind) {
        case OpKind::kNormalize: {
          auto opts = at::TensorOptions().dtype(at::kFloat);
          out.f = values[n.inputs[0]].Float() * at::tensor(n.mul, opts).view({1, 3, 1, 1}) +
                  at::tensor(n.add, opts).view({1, 3, 1, 1});
          break;
        }
        case OpKind::kConv: {
          const ConvSpec& c = n.conv;
          Value& in = values[n.inputs[0]];
          if (!packed_[i].isNone()) {
            out.q = IntegerConv(in.Quantized(c.input_scale), packed_[i], c.output_scale,
                                c.act != Act::kNone);
            out.step = c.output_scale;
            break;
          }
          // LibTorch's float convs are fastest on contiguous NCHW.
          at::Tensor x = in.Float().contiguous();
          if (c.quantized() && precision_ == Precision::kInt8) {
            x = at::fake_quantize_per_tensor_affine(x, c.input_scale, kZeroPoint, 1, 255);
          }
          out.f = Activate(at::conv2d(x, c.weight, c.bias, {c.stride, c.stride},
                                      {c.padding, c.padding}, {c.dilation, c.dilation}, c.groups),
                           c.act);
          if (c.output_scale > 0 && precision_ == Precision::kInt8) {
            out.f = at::fake_quantize_per_tensor_affine(out.f, c.output_scale, kZeroPoint, 1, 255);
          }
          break;
        }
        case OpKind::kAdd:
          out.f = values[n.inputs[0]].Float() + values[n.inputs[1]].Float();
          break;
        case OpKind::kConcat: {
          std::vector<at::Tensor> parts;
          for (const std::string& in : n.inputs) parts.push_back(values[in].Float());
          out.f = at::cat(parts, 1);
          break;
        }
        case OpKind::kMean:
          out.f = values[n.inputs[0]].Float().mean({2, 3}, /*keepdim=*/true);
          break;
        case OpKind::kExpandLike: {
          const at::Tensor& ref = values[n.inputs[1]].Float();
          out.f = values[n.inputs[0]]
                      .Float()
                      .expand({-1, -1, ref.size(2), ref.size(3)})
                      .contiguous();
          break;
        }
        case OpKind::kResizeLike: {
          const at::Tensor& ref = values[n.inputs[1]].Float();
          out.f = at::upsample_bilinear2d(values[n.inputs[0]].Float(), {ref.size(2), ref.size(3)},
                                          /*align_corners=*/false);
          break;
        }
      }
      values[n.output] = std::move(out);
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("inference failed: ", e.what_without_backtrace()));
  }
  return values[graph_.output].Float().contiguous();
}

}  // namespace segqat::infer
