#include "engine/infer/engine.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/export/deployed_ops.h"
#include "engine/infer/qtensor.h"

namespace segqat::infer {
namespace {

using exports::Act;
using exports::ConvSpec;
using exports::Node;
using exports::OpKind;

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

// oneDNN's int8 conv with float output (LibTorch's onednn::qconv2d_pointwise,
// as Inductor uses it) and its prepack, looked up once; null where this
// LibTorch lacks them.
struct OnednnOps {
  std::optional<c10::OperatorHandle> prepack, conv;
};
const OnednnOps& Onednn() {
  static const OnednnOps ops = [] {
    auto& d = c10::Dispatcher::singleton();
    return OnednnOps{d.findSchema({"onednn::qconv_prepack", ""}),
                     d.findSchema({"onednn::qconv2d_pointwise", ""})};
  }();
  return ops;
}

// The weight's codes with unit scales, so that the kernel's float output is
// the integer sum itself, for inputs with zero point `zero_point`.
IntegerSumConv PrepackSums(const ConvSpec& c, int64_t zero_point) {
  const int64_t out = c.weight_int8.size(0);
  IntegerSumConv s;
  s.unit_scales = at::ones({out}, at::TensorOptions().dtype(at::kFloat));
  s.zero_points = at::zeros({out}, at::TensorOptions().dtype(at::kLong));
  std::vector<c10::IValue> stack{c.weight_int8.contiguous(),
                                 s.unit_scales,
                                 1.0,
                                 zero_point,
                                 c10::List<int64_t>({c.stride, c.stride}),
                                 c10::List<int64_t>({c.padding, c.padding}),
                                 c10::List<int64_t>({c.dilation, c.dilation}),
                                 c.groups,
                                 c10::IValue()};
  Onednn().prepack->callBoxed(&stack);
  s.packed = stack.at(0);
  return s;
}

// The exact integer sums of a conv over the codes in q (quint8), as float:
// oneDNN's int8 kernel with unit scales and float output.
at::Tensor IntegerSums(const at::Tensor& q, const IntegerSumConv& s, const ConvSpec& c) {
  at::Tensor in = q.contiguous(at::MemoryFormat::ChannelsLast);
  // The bytes as plain uint8, no copy (q outlives the call).
  at::Tensor raw =
      at::from_blob(in.data_ptr(), in.sizes(), in.strides(), at::TensorOptions().dtype(at::kByte));
  std::vector<c10::IValue> stack{raw,
                                 1.0,
                                 in.q_zero_point(),
                                 s.packed,
                                 s.unit_scales,
                                 s.zero_points,
                                 c10::IValue(),
                                 c10::List<int64_t>({c.stride, c.stride}),
                                 c10::List<int64_t>({c.padding, c.padding}),
                                 c10::List<int64_t>({c.dilation, c.dilation}),
                                 c.groups,
                                 1.0,
                                 int64_t{0},
                                 c10::ScalarType::Float,
                                 std::string("none"),
                                 c10::List<c10::optional<at::Scalar>>(),
                                 std::string("")};
  Onednn().conv->callBoxed(&stack);
  return stack.at(0).toTensor();
}

// The output clamped to the training's range (+-max_code steps).
at::Tensor IntegerConv(const at::Tensor& qx, const c10::IValue& packed, double step,
                       int64_t zero_point, int64_t max_code, bool relu) {
  std::vector<c10::IValue> stack{qx, packed, step, zero_point};
  QuantizedOp(relu ? "quantized::conv2d_relu" : "quantized::conv2d", "new").callBoxed(&stack);
  at::Tensor y = stack.at(0).toTensor();
  ClampToSymmetricRange(y, max_code);
  return y;
}

// A tensor as float (channels-last), as quint8 at one step, or both (each
// made on demand from the other). zero_point: 0 when it cannot be negative.
struct Value {
  at::Tensor f, q;
  int64_t zero_point = 128, max_code = 127;

  const at::Tensor& Float() {
    if (!f.defined()) f = DequantizeSymmetric(q);
    return f;
  }
  at::IntArrayRef sizes() const { return f.defined() ? f.sizes() : q.sizes(); }
  bool QuantizedAt(float step) const {
    return q.defined() && static_cast<float>(q.q_scale()) == step;
  }
  // Clamped to +-max_code steps, as the training's quantizer does. Codes
  // at another step are requantized as integers.
  at::Tensor Quantized(float step) {
    if (QuantizedAt(step)) return q;
    if (q.defined()) return RequantizeSymmetric(q, step, zero_point, max_code);
    return QuantizeSymmetric(Float(), step, zero_point, max_code);
  }
  // The integer codes at `step`, as float.
  at::Tensor Codes(float step) {
    if (QuantizedAt(step)) return CodesOf(q);
    if (q.defined()) return CodesOf(RequantizeSymmetric(q, step, zero_point, max_code));
    return CodesOf(Float(), step, max_code);
  }
};

at::QEngine ParseQEngine(const std::string& name) {
  if (name == "onednn") return at::QEngine::ONEDNN;
  if (name == "fbgemm") return at::QEngine::FBGEMM;
  return at::QEngine::QNNPACK;
}

}  // namespace

void RetainFreedMemory() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

int64_t Engine::ZeroPoint(const std::string& tensor) const {
  return exports::ActivationZeroPoint(non_negative_.count(tensor) > 0, graph_.max_code());
}

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

bool CpuHasVnni() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
#else
  return false;
#endif
}

Engine::Engine(exports::DeployGraph graph, Precision precision, EngineOptions options)
    : graph_(std::move(graph)), precision_(precision), options_(options) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(exports::DeployGraph graph,
                                                       Precision precision, EngineOptions options) {
  if (auto st = exports::ValidateGraph(graph); !st.ok()) return st;
  std::unique_ptr<Engine> e(new Engine(std::move(graph), precision, options));
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
  non_negative_ = exports::NonNegativeTensors(graph_);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    for (const std::string& in : graph_.nodes[i].inputs) last_use_[in] = i;
  }
  if (precision_ != Precision::kInt8) {
    kernels_.assign(graph_.nodes.size(), exports::ConvKernel());
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& n = graph_.nodes[i];
      if (n.kind == OpKind::kConv) kernels_[i] = exports::PrepareConv(n.conv, /*on_codes=*/false);
    }
    return;
  }
  qengine_ = PreferredQEngine();
  bool vnni = options_.x86_rule == X86Int8Rule::kVnni;
  if (options_.x86_rule == X86Int8Rule::kDetect) {
    const char* env = std::getenv("SEGQAT_X86_INT8_RULE");
    vnni = env && std::string(env) == "no-vnni" ? false : CpuHasVnni();
  }
  if (!qengine_.empty() && options_.integer_kernels) PrepackIntegerConvs(vnni);
  PrepackIntegerSums(vnni);
  kernels_.assign(graph_.nodes.size(), exports::ConvKernel());
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& n = graph_.nodes[i];
    if (n.kind != OpKind::kConv || !packed_[i].isNone()) continue;
    kernels_[i] = exports::PrepareConv(n.conv, /*on_codes=*/true);
  }
}

// Picks the non-depthwise quantized convs whose integer sums oneDNN's int8
// kernels compute exactly (VNNI: all; without: inputs within 0..127) and
// prepacks them; their sums come out as float and the node's epilogue
// follows as on the float path (oneDNN's own requantizing is not used).
void Engine::PrepackIntegerSums(bool vnni) {
  if (!options_.integer_sums || !Onednn().prepack || !Onednn().conv || !at::hasMKLDNN()) {
    return;
  }
  sums_.assign(graph_.nodes.size(), IntegerSumConv());
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& n = graph_.nodes[i];
    if (n.kind != OpKind::kConv || !n.conv.quantized() || !packed_[i].isNone() ||
        n.conv.groups != 1) {
      continue;
    }
    const int64_t zero_point = ZeroPoint(n.inputs[0]);
    if (!vnni && !exports::ExactInX86Int8Kernels(zero_point, graph_.max_code())) continue;
    sums_[i] = PrepackSums(n.conv, zero_point);
    ++integer_sum_convs_;
  }
}

// Picks the convs that run on integer kernels (by the rule for this CPU)
// and prepacks their weights.
void Engine::PrepackIntegerConvs(bool vnni) {
  at::globalContext().setQEngine(ParseQEngine(qengine_));
  // QNNPACK widens to 16 bits before multiplying, and oneDNN and FBGEMM sum
  // in 32 bits with VNNI: exact for any input. Without VNNI they are not on
  // 8-bit signed inputs (exports::ExactInX86Int8Kernels); those convs run in
  // float on the integer codes, which is exact.
  const bool any_input = qengine_ == "qnnpack" || vnni;
  int8_rule_ = qengine_ == "qnnpack" ? "any" : vnni ? "vnni" : "no-vnni";
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& n = graph_.nodes[i];
    if (n.kind == OpKind::kConv && n.conv.quantized() && n.conv.output_scale > 0 &&
        (any_input || exports::ExactInX86Int8Kernels(ZeroPoint(n.inputs[0]), graph_.max_code()))) {
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
        image.defined()
            ? absl::StrCat(c10::toString(image.scalar_type()), " ", c10::str(image.sizes()))
            : "nothing"));
  }
  at::NoGradGuard no_grad;
  std::map<std::string, Value> values;
  Value& input = values[graph_.input];
  input.f = image.contiguous();
  input.zero_point = ZeroPoint(graph_.input);
  input.max_code = graph_.max_code();
  try {
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& n = graph_.nodes[i];
      const auto start = std::chrono::steady_clock::now();
      Value out;
      out.zero_point = ZeroPoint(n.output);
      out.max_code = graph_.max_code();
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
            at::Tensor q = in.Quantized(c.input_scale);
            if (probe_) probe_(n, CodesOf(q));
            out.q = IntegerConv(q, packed_[i], c.output_scale, out.zero_point, out.max_code,
                                c.act != Act::kNone);
            break;
          }
          // The node's arithmetic, as the simulated model's eval forward
          // runs it (exports::RunConv): a quantized conv sums the integer
          // codes exactly and scales the sums afterwards.
          const exports::ConvKernel& k = kernels_[i];
          if (k.on_codes) {
            at::Tensor sums;
            if (!sums_.empty() && !sums_[i].packed.isNone()) {
              at::Tensor q = in.Quantized(c.input_scale);
              if (probe_) probe_(n, CodesOf(q));
              sums = IntegerSums(q, sums_[i], c);
            } else {
              at::Tensor codes = in.Codes(c.input_scale);
              if (probe_) probe_(n, codes);
              sums = exports::ConvSums(c, k, codes);
            }
            // exports::RunConv's scaling, bias and activation, and the
            // quantization its consumers would apply, in one pass.
            const int act = c.act == Act::kReLU ? 1 : c.act == Act::kReLU6 ? 2 : 0;
            if (c.output_scale > 0) {
              out.q = ScaleBiasActivateQuantize(sums, k.mul, k.bias, act, c.output_scale,
                                                out.zero_point, out.max_code);
            } else {
              out.f = ScaleBiasActivate(sums, k.mul, k.bias, act);
            }
            break;
          }
          out.f = exports::RunConv(c, k, in.Float());
          if (c.output_scale > 0 && precision_ == Precision::kInt8) {
            out.q = QuantizeSymmetric(out.f, c.output_scale, out.zero_point, out.max_code);
            out.f = at::Tensor();
          }
          break;
        }
        case OpKind::kAdd: {
          const exports::AddSpec& s = n.sum;
          if (s.quantized() && precision_ == Precision::kInt8) {
            out.q = AddSymmetric(values[n.inputs[0]].Quantized(s.a_scale),
                                 values[n.inputs[1]].Quantized(s.b_scale), s.output_scale,
                                 out.zero_point, out.max_code);
            if (probe_) probe_(n, CodesOf(out.q));
            break;
          }
          out.f = values[n.inputs[0]].Float() + values[n.inputs[1]].Float();
          break;
        }
        case OpKind::kConcat: {
          std::vector<at::Tensor> parts;
          for (const std::string& in : n.inputs) parts.push_back(values[in].Float());
          out.f = at::cat(parts, 1);
          break;
        }
        case OpKind::kMean:
          out.f = exports::MeanHW(values[n.inputs[0]].Float());
          break;
        case OpKind::kExpandLike: {
          const auto ref = values[n.inputs[1]].sizes();
          out.f = values[n.inputs[0]].Float().expand({-1, -1, ref[2], ref[3]}).contiguous();
          break;
        }
        case OpKind::kResizeLike: {
          const auto ref = values[n.inputs[1]].sizes();
          out.f = exports::ResizeLike(values[n.inputs[0]].Float(), ref[2], ref[3]);
          break;
        }
      }
      values[n.output] = std::move(out);
      // Tensors whose last reader this was are freed now.
      for (const std::string& in : n.inputs) {
        if (last_use_.at(in) == i && in != graph_.output) values.erase(in);
      }
      if (!node_ms_.empty()) {
        node_ms_[i] +=
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
      }
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("inference failed: ", e.what_without_backtrace()));
  }
  return values[graph_.output].Float().contiguous();
}

}  // namespace segqat::infer
