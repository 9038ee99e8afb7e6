// model.onnx (engine/export/onnx_model.h): one writer class that emits each
// deploy-graph node as ONNX ops, in the QDQ or the exact form. Over 400
// lines because the two forms share its quantize/dequantize bookkeeping.
#include "engine/export/onnx_model.h"

#include <ATen/ATen.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace segqat::exports {
namespace {

class OnnxWriter {
 public:
  OnnxWriter(onnx::GraphProto* graph, OnnxOptions options) : g_(graph), options_(options) {}

  void Write(const DeployGraph& graph) {
    max_code_ = graph.max_code();
    non_negative_ = NonNegativeTensors(graph);
    for (const Node& n : graph.nodes) {
      switch (n.kind) {
        case OpKind::kNormalize: {
          const std::string mul = Initializer(n.name + ".mul", Channels(n.mul));
          const std::string add = Initializer(n.name + ".add", Channels(n.add));
          Op("Add", {Op("Mul", {n.inputs[0], mul}, n.name + ".scaled")->output(0), add}, n.output);
          break;
        }
        case OpKind::kConv:
          WriteConv(n);
          break;
        case OpKind::kAdd:
          WriteAdd(n);
          break;
        case OpKind::kConcat:
          Op("Concat", n.inputs, n.output)->add_attribute()->CopyFrom(Int("axis", 1));
          break;
        case OpKind::kMean: {
          auto* op = Op("ReduceMean", n.inputs, n.output);
          op->add_attribute()->CopyFrom(Ints("axes", {2, 3}));
          op->add_attribute()->CopyFrom(Int("keepdims", 1));
          break;
        }
        case OpKind::kExpandLike: {
          const std::string ones = Initializer(n.name + ".batch_channels", Longs({1, 1}));
          const std::string shape =
              Shape1D({ones, Spatial(n.inputs[1], n.name + ".ref")}, n.name + ".shape");
          Op("Expand", {n.inputs[0], shape}, n.output);
          break;
        }
        case OpKind::kResizeLike: {
          const std::string head = Op("Slice",
                                      {Op("Shape", {n.inputs[0]}, n.name + ".x_shape")->output(0),
                                       Initializer(n.name + ".nc_start", Longs({0})),
                                       Initializer(n.name + ".nc_end", Longs({2}))},
                                      n.name + ".nc")
                                       ->output(0);
          const std::string sizes =
              Shape1D({head, Spatial(n.inputs[1], n.name + ".ref")}, n.name + ".sizes");
          auto* op = Op("Resize", {n.inputs[0], "", "", sizes}, n.output);
          op->add_attribute()->CopyFrom(Str("mode", "linear"));
          op->add_attribute()->CopyFrom(Str("coordinate_transformation_mode", "half_pixel"));
          break;
        }
      }
    }
  }

 private:
  static at::Tensor Channels(const std::vector<float>& v) {
    return at::tensor(v, at::TensorOptions().dtype(at::kFloat)).view({1, -1, 1, 1});
  }
  static at::Tensor Longs(const std::vector<int64_t>& v) {
    return at::tensor(v, at::TensorOptions().dtype(at::kLong));
  }
  static onnx::AttributeProto Int(const std::string& name, int64_t v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(v);
    return a;
  }
  static onnx::AttributeProto Ints(const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a.add_ints(x);
    return a;
  }
  static onnx::AttributeProto Str(const std::string& name, const std::string& v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s(v);
    return a;
  }

  onnx::NodeProto* Op(const std::string& type, const std::vector<std::string>& inputs,
                      const std::string& output) {
    onnx::NodeProto* node = g_->add_node();
    node->set_op_type(type);
    node->set_name(output);
    for (const std::string& in : inputs) node->add_input(in);
    node->add_output(output);
    return node;
  }

  std::string Initializer(const std::string& name, const at::Tensor& t) {
    onnx::TensorProto* p = g_->add_initializer();
    p->set_name(name);
    for (int64_t d : t.sizes()) p->add_dims(d);
    switch (t.scalar_type()) {
      case at::kFloat:
        p->set_data_type(onnx::TensorProto::FLOAT);
        break;
      case at::kByte:
        p->set_data_type(onnx::TensorProto::UINT8);
        break;
      case at::kChar:
        p->set_data_type(onnx::TensorProto::INT8);
        break;
      case at::kInt:
        p->set_data_type(onnx::TensorProto::INT32);
        break;
      case at::kLong:
        p->set_data_type(onnx::TensorProto::INT64);
        break;
      default:
        TORCH_CHECK(false, "no ONNX type for ", t.scalar_type());
    }
    at::Tensor c = t.contiguous();  // raw_data is little-endian, as x86 and ARM are
    p->set_raw_data(c.data_ptr(), c.numel() * c.element_size());
    return name;
  }

  // 1-D int64 pieces joined into one shape.
  std::string Shape1D(const std::vector<std::string>& parts, const std::string& name) {
    auto* op = Op("Concat", parts, name);
    op->add_attribute()->CopyFrom(Int("axis", 0));
    return name;
  }

  // The (H, W) of `x` as an int64 tensor.
  std::string Spatial(const std::string& x, const std::string& prefix) {
    return Op("Slice",
              {Op("Shape", {x}, prefix + "_shape")->output(0),
               Initializer(prefix + "_hw_start", Longs({2})),
               Initializer(prefix + "_hw_end", Longs({4}))},
              prefix + "_hw")
        ->output(0);
  }

  // The uint8 codes of x at `scale` (zero point ZeroPoint(x)); one
  // QuantizeLinear per (tensor, scale). The clip to +-127 steps keeps -128
  // out, as the training's quantizer does.
  std::string QuantCodes(const std::string& x, float scale, const std::string& prefix) {
    auto it = codes_.find({x, scale});
    if (it != codes_.end()) return it->second;
    const std::string clipped =
        Op("Clip",
           {x, Initializer(prefix + "_min", at::full({}, -max_code_ * scale)),
            Initializer(prefix + "_max", at::full({}, max_code_ * scale))},
           prefix + "_clip")
            ->output(0);
    const std::string q =
        Op("QuantizeLinear", {clipped, Scale(scale, prefix), ZeroPoint(x)}, prefix + "_q")
            ->output(0);
    codes_[{x, scale}] = q;
    return q;
  }

  // x quantized with `scale` and dequantized again; one pair per (tensor, scale).
  std::string QuantDequant(const std::string& x, float scale, const std::string& prefix) {
    auto it = dequantized_.find({x, scale});
    if (it != dequantized_.end()) return it->second;
    const std::string q = QuantCodes(x, scale, prefix);
    const std::string dq =
        Op("DequantizeLinear", {q, Scale(scale, prefix), ZeroPoint(x)}, prefix + "_dq")->output(0);
    dequantized_[{x, scale}] = dq;
    return dq;
  }

  // The scalar scale initializer of a prefix, made on first use.
  std::string Scale(float scale, const std::string& prefix) {
    const std::string name = prefix + "_scale";
    if (bytes_.insert(name).second) Initializer(name, at::full({}, scale));
    return name;
  }

  // OnnxForm::kExact: the conv's integer sums (ConvInteger on uint8 codes,
  // exact), then in float the engine's epilogue: * (input step x weight
  // step[c]), + bias, one rounding each (exports::RunConv).
  void WriteExactConv(const Node& n) {
    const ConvSpec& c = n.conv;
    const std::string codes = QuantCodes(n.inputs[0], c.input_scale, n.name + ".input");
    const std::string weight =
        Initializer(n.name + ".weight_uint8", (c.weight_int8.to(at::kInt) + 128).to(at::kByte));
    auto* conv = Op("ConvInteger",
                    {codes, weight, ZeroPoint(n.inputs[0]), Byte("weight_zero_point_uint8", 128)},
                    n.name + ".sums");
    ConvAttributes(c, conv);
    auto* cast = Op("Cast", {n.name + ".sums"}, n.name + ".sums_float");
    cast->add_attribute()->CopyFrom(Int("to", onnx::TensorProto::FLOAT));
    const std::string scaled =
        Op("Mul",
           {n.name + ".sums_float",
            Initializer(n.name + ".multiplier",
                        (c.weight_scale * c.input_scale).view({1, -1, 1, 1}))},
           n.name + ".scaled")
            ->output(0);
    Op("Add", {scaled, Initializer(n.name + ".bias", c.bias.view({1, -1, 1, 1}))},
       OnnxConvOutputName(n));
  }

  void WriteConv(const Node& n) {
    const ConvSpec& c = n.conv;
    std::vector<std::string> inputs;
    const bool exact = c.quantized() && options_.form == OnnxForm::kExact;
    if (exact) {
      WriteExactConv(n);
    } else if (c.quantized()) {
      const int64_t out = c.weight.size(0);
      const auto channel_attr = Int("axis", 0);
      inputs.push_back(QuantDequant(n.inputs[0], c.input_scale, n.name + ".input"));
      const std::string w_scale = Initializer(n.name + ".weight_scale", c.weight_scale);
      // int8 weights where ONNX Runtime's u8 x s8 kernels are exact on the
      // input (ExactInX86Int8Kernels: non-negative, or 7-bit); elsewhere the
      // same codes as uint8 with zero point 128, which ONNX Runtime runs
      // with its u8 x u8 kernels, exact where u8 x s8 would saturate.
      const bool int8 =
          options_.int8_weights_everywhere ||
          ExactInX86Int8Kernels(
              ActivationZeroPoint(non_negative_.count(n.inputs[0]) > 0, max_code_), max_code_);
      const auto codes = int8 ? Initializer(n.name + ".weight_int8", c.weight_int8)
                              : Initializer(n.name + ".weight_uint8",
                                            (c.weight_int8.to(at::kInt) + 128).to(at::kByte));
      auto* w = Op("DequantizeLinear",
                   {codes, w_scale,
                    Initializer(n.name + ".weight_zero_point",
                                int8 ? at::zeros({out}, at::TensorOptions().dtype(at::kChar))
                                     : at::full({out}, 128, at::TensorOptions().dtype(at::kByte)))},
                   n.name + ".weight");
      w->add_attribute()->CopyFrom(channel_attr);
      at::Tensor bias_scale = c.weight_scale * c.input_scale;
      at::Tensor bias_codes = at::round(c.bias / bias_scale).clamp(-kMaxBiasCode, kMaxBiasCode);
      auto* b = Op("DequantizeLinear",
                   {Initializer(n.name + ".bias_int32", bias_codes.to(at::kInt)),
                    Initializer(n.name + ".bias_scale", bias_scale),
                    Initializer(n.name + ".bias_zero_point",
                                at::zeros({out}, at::TensorOptions().dtype(at::kInt)))},
                   n.name + ".bias");
      b->add_attribute()->CopyFrom(channel_attr);
      inputs.push_back(w->output(0));
      inputs.push_back(b->output(0));
    } else {
      inputs = {n.inputs[0], Initializer(n.name + ".weight", c.weight),
                Initializer(n.name + ".bias", c.bias)};
    }
    const bool quantized_out = c.output_scale > 0;
    const bool has_act = c.act != Act::kNone;
    if (quantized_out) {
      // Conv -> QuantizeLinear, the pattern ONNX Runtime runs as QLinearConv.
      // An activated output has zero point 0, where the quantizer's clamp at
      // 0 is the ReLU (and ReLU6's 6 lies at or past 127 steps, by
      // PlanQuantizedOutputs); a uint8 Clip then keeps the codes to the
      // training's +-127 steps.
      if (!exact) ConvOp(c, inputs, OnnxConvOutputName(n));
      QuantizeOutput(OnnxConvOutputName(n), c.output_scale, n.output, n.name, has_act);
      return;
    }
    if (!exact) ConvOp(c, inputs, OnnxConvOutputName(n));
    if (!has_act) return;
    if (c.act == Act::kReLU) {
      Op("Relu", {OnnxConvOutputName(n)}, n.output);
    } else {
      Op("Clip",
         {OnnxConvOutputName(n), Initializer(n.name + ".min", at::full({}, 0.f)),
          Initializer(n.name + ".max", at::full({}, 6.f))},
         n.output);
    }
  }

  // A quantized add is DequantizeLinear on both inputs, Add, QuantizeLinear:
  // the pattern ONNX Runtime runs as QLinearAdd.
  void WriteAdd(const Node& n) {
    const AddSpec& s = n.sum;
    if (!s.quantized()) {
      Op("Add", n.inputs, n.output);
      return;
    }
    const std::string a = QuantDequant(n.inputs[0], s.a_scale, n.name + ".a");
    const std::string b = QuantDequant(n.inputs[1], s.b_scale, n.name + ".b");
    // Sum, which ONNX Runtime leaves in float (the engine's arithmetic);
    // Add between DequantizeLinear and QuantizeLinear it runs as QLinearAdd.
    Op(options_.form == OnnxForm::kExact ? "Sum" : "Add", {a, b}, n.name + ".sum");
    QuantizeOutput(n.name + ".sum", s.output_scale, n.output, n.name,
                   non_negative_.count(n.output));
  }

  // x quantized at `scale` into `output` (a DequantizeLinear): QuantizeLinear,
  // a uint8 Clip to the training's +-max_code steps (0..max_code for a
  // non-negative tensor, whose zero point 0 clamps at 0), DequantizeLinear.
  void QuantizeOutput(const std::string& x, float scale, const std::string& output,
                      const std::string& prefix, bool non_negative) {
    const std::string s = Initializer(prefix + ".output_scale", at::full({}, scale));
    const std::string zp = ZeroPoint(output);
    const std::string q = Op("QuantizeLinear", {x, s, zp}, prefix + ".output_q")->output(0);
    const std::string clipped =
        Op("Clip",
           {q, non_negative ? zp : Byte("activation_code_min", SignedZeroPoint() - max_code_),
            non_negative ? Byte("activation_code_max_non_negative", max_code_)
                         : Byte("activation_code_max", SignedZeroPoint() + max_code_)},
           prefix + ".output_clip")
            ->output(0);
    Op("DequantizeLinear", {clipped, s, zp}, output);
    dequantized_[{output, scale}] = output;
    codes_[{output, scale}] = clipped;
  }

  void ConvOp(const ConvSpec& c, const std::vector<std::string>& inputs,
              const std::string& output) {
    ConvAttributes(c, Op("Conv", inputs, output));
  }

  void ConvAttributes(const ConvSpec& c, onnx::NodeProto* conv) {
    const int64_t k = c.weight.size(2);
    conv->add_attribute()->CopyFrom(Ints("kernel_shape", {k, k}));
    conv->add_attribute()->CopyFrom(Ints("strides", {c.stride, c.stride}));
    conv->add_attribute()->CopyFrom(Ints("pads", {c.padding, c.padding, c.padding, c.padding}));
    conv->add_attribute()->CopyFrom(Ints("dilations", {c.dilation, c.dilation}));
    conv->add_attribute()->CopyFrom(Int("group", c.groups));
  }

  // The uint8 zero point of tensor x (ActivationZeroPoint).
  std::string ZeroPoint(const std::string& x) {
    return non_negative_.count(x)
               ? Byte("activation_zero_point_non_negative", ActivationZeroPoint(true, max_code_))
               : Byte("activation_zero_point", SignedZeroPoint());
  }
  int64_t SignedZeroPoint() const { return ActivationZeroPoint(false, max_code_); }

  // A uint8 scalar initializer, made on first use.
  std::string Byte(const std::string& name, int64_t value) {
    if (bytes_.insert(name).second) {
      Initializer(name, at::full({}, value, at::TensorOptions().dtype(at::kByte)));
    }
    return name;
  }

  onnx::GraphProto* g_;
  OnnxOptions options_;
  std::set<std::string> non_negative_;
  int64_t max_code_ = 127;
  std::set<std::string> bytes_;  // the Byte initializers made
  std::map<std::pair<std::string, float>, std::string> dequantized_;
  std::map<std::pair<std::string, float>, std::string> codes_;  // uint8 codes
};

void SetTensorType(onnx::ValueInfoProto* v, const std::string& name,
                   const std::vector<std::string>& dims, int64_t channels) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (i == 1) {
      d->set_dim_value(channels);
    } else {
      d->set_dim_param(dims[i]);
    }
  }
}

}  // namespace

std::string OnnxConvOutputName(const Node& conv) {
  const bool bare = conv.conv.output_scale <= 0 && conv.conv.act == Act::kNone;
  return bare ? conv.output : conv.name + ".conv";
}

absl::Status WriteOnnx(const DeployGraph& graph, const std::string& path, OnnxOptions options) {
  if (auto st = ValidateGraph(graph); !st.ok()) return st;
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.set_producer_name("segqat");
  model.set_producer_version("1");
  model.set_doc_string(options.form == OnnxForm::kExact
                           ? "DeepLabv3+ / MobileNetV2, quantization-aware trained, int8 "
                             "(ConvInteger, the INT8 engine's arithmetic)"
                           : "DeepLabv3+ / MobileNetV2, quantization-aware trained, QDQ int8");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  auto* meta = model.add_metadata_props();
  meta->set_key("num_classes");
  meta->set_value(std::to_string(graph.num_classes));
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("segqat");
  SetTensorType(g->add_input(), graph.input, {"N", "C", "H", "W"}, 3);
  SetTensorType(g->add_output(), graph.output, {"N", "C", "H", "W"}, graph.num_classes);
  try {
    OnnxWriter(g, options).Write(graph);
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("ONNX export: ", e.what()));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !model.SerializeToOstream(&out) || !out.flush()) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace segqat::exports
