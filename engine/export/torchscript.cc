#include "engine/export/torchscript.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace segqat::exports {
namespace {

constexpr char kGraphAttribute[] = "segqat_graph";
constexpr char kGraphMagic[] = "segqat-graph 1";
// Absent in files from before 7-bit activations: 8.
constexpr char kActivationBitsAttribute[] = "segqat_activation_bits";

// A float as a TorchScript literal that reads back as the same float32.
std::string FloatLiteral(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

const char* ActName(Act a) {
  return a == Act::kReLU ? "relu" : a == Act::kReLU6 ? "relu6" : "none";
}

std::string Prefix(size_t index) { return absl::StrCat("p", index, "_"); }

// Local variable names for graph tensors.
class Names {
 public:
  explicit Names(const std::string& input) { names_[input] = "image"; }
  std::string Get(const std::string& tensor) const { return names_.at(tensor); }
  std::string Define(const std::string& tensor) {
    return names_[tensor] = absl::StrCat("v", names_.size());
  }

 private:
  std::map<std::string, std::string> names_;
};

// The integer codes of x at `step` (clamped to +-max_code), as float.
std::string Codes(const std::string& x, float step, int64_t max_code) {
  return absl::StrCat("torch.clamp(torch.round(torch.div(", x, ", ", FloatLiteral(step), ")), -",
                      max_code, ".0, ", max_code, ".0)");
}

// x quantized to +-127 steps and back, rounded as the INT8 engine and ONNX
// Runtime round (x / step, halves to even; fake_quantize_per_tensor_affine
// multiplies by 1 / step, which differs by one float rounding).
std::string FakeQuant(const std::string& x, float step, int64_t max_code) {
  return absl::StrCat(Codes(x, step, max_code), " * ", FloatLiteral(step));
}

// The forward method's source; with `codes`, forward_codes: the same
// arithmetic, returning each quantized tensor's integer codes (a conv's
// input, an add's output) by node name, for the layer diff.
std::string Source(const DeployGraph& graph, bool codes = false) {
  std::ostringstream src;
  if (codes) {
    src << "def forward_codes(self, image: Tensor) -> Dict[str, Tensor]:\n"
        << "    codes: Dict[str, Tensor] = {}\n";
  } else {
    src << "def forward(self, image: Tensor) -> Tensor:\n";
  }
  Names names(graph.input);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& n = graph.nodes[i];
    const std::string p = "self." + Prefix(i);
    std::vector<std::string> in;
    for (const std::string& t : n.inputs) in.push_back(names.Get(t));
    const std::string out = names.Define(n.output);
    src << "    # " << n.name << "\n";
    switch (n.kind) {
      case OpKind::kNormalize:
        src << "    " << out << " = " << in[0] << " * " << p << "mul + " << p << "add\n";
        break;
      case OpKind::kConv: {
        const ConvSpec& c = n.conv;
        const std::string geometry =
            absl::StrCat("[", c.stride, ", ", c.stride, "], [", c.padding, ", ", c.padding, "], [",
                         c.dilation, ", ", c.dilation, "], ", c.groups, ")");
        if (c.quantized()) {
          // The sums of integer codes, exact in float, then scaled by
          // s_x * s_w per channel: what the integer kernels compute.
          std::string input_codes = Codes(in[0], c.input_scale, graph.max_code());
          if (codes) {
            src << "    " << out << "_codes = " << input_codes << "\n"
                << "    codes[\"" << n.name << "\"] = " << out << "_codes\n";
            input_codes = out + "_codes";
          }
          src << "    " << out << " = torch.conv2d(" << input_codes << ", " << p
              << "weight_int8.float(), None, " << geometry << " * " << p << "step + " << p
              << "bias.view(1, -1, 1, 1)\n";
        } else {
          src << "    " << out << " = torch.conv2d(" << in[0] << ", " << p << "weight, " << p
              << "bias, " << geometry << "\n";
        }
        if (c.act == Act::kReLU) src << "    " << out << " = torch.relu(" << out << ")\n";
        if (c.act == Act::kReLU6)
          src << "    " << out << " = torch.clamp(" << out << ", 0.0, 6.0)\n";
        if (c.output_scale > 0) {
          src << "    " << out << " = " << FakeQuant(out, c.output_scale, graph.max_code()) << "\n";
        }
        break;
      }
      case OpKind::kAdd: {
        const AddSpec& s = n.sum;
        if (!s.quantized()) {
          src << "    " << out << " = " << in[0] << " + " << in[1] << "\n";
          break;
        }
        src << "    " << out << " = " << FakeQuant(in[0], s.a_scale, graph.max_code()) << " + "
            << FakeQuant(in[1], s.b_scale, graph.max_code()) << "\n";
        if (codes) {
          src << "    " << out << "_codes = " << Codes(out, s.output_scale, graph.max_code())
              << "\n"
              << "    codes[\"" << n.name << "\"] = " << out << "_codes\n"
              << "    " << out << " = " << out << "_codes * " << FloatLiteral(s.output_scale)
              << "\n";
          break;
        }
        src << "    " << out << " = " << FakeQuant(out, s.output_scale, graph.max_code()) << "\n";
        break;
      }
      case OpKind::kConcat:
        src << "    " << out << " = torch.cat([" << absl::StrJoin(in, ", ") << "], 1)\n";
        break;
      case OpKind::kMean:
        src << "    " << out << " = torch.mean(" << in[0] << ", [2, 3], True)\n";
        break;
      case OpKind::kExpandLike:
        src << "    " << out << " = " << in[0] << ".expand([-1, -1, " << in[1] << ".size(2), "
            << in[1] << ".size(3)])\n";
        break;
      case OpKind::kResizeLike:
        src << "    " << out << " = torch.upsample_bilinear2d(" << in[0] << ", [" << in[1]
            << ".size(2), " << in[1] << ".size(3)], False, None, None)\n";
        break;
    }
  }
  if (codes) {
    src << "    codes[\"logits\"] = " << names.Get(graph.output) << "\n    return codes\n";
  } else {
    src << "    return " << names.Get(graph.output) << "\n";
  }
  return src.str();
}

// One line a node: kind name in=a,b out=o [key=value ...].
std::string GraphText(const DeployGraph& graph) {
  std::ostringstream t;
  t << kGraphMagic << "\ninput " << graph.input << "\noutput " << graph.output << "\nnum_classes "
    << graph.num_classes << "\n";
  for (const Node& n : graph.nodes) {
    t << OpKindName(n.kind) << " " << n.name << " in=" << absl::StrJoin(n.inputs, ",")
      << " out=" << n.output;
    if (n.kind == OpKind::kConv) {
      const ConvSpec& c = n.conv;
      t << " stride=" << c.stride << " padding=" << c.padding << " dilation=" << c.dilation
        << " groups=" << c.groups << " act=" << ActName(c.act)
        << " input_scale=" << FloatLiteral(c.input_scale)
        << " output_scale=" << FloatLiteral(c.output_scale);
    }
    if (n.kind == OpKind::kAdd && n.sum.quantized()) {
      t << " a_scale=" << FloatLiteral(n.sum.a_scale) << " b_scale=" << FloatLiteral(n.sum.b_scale)
        << " output_scale=" << FloatLiteral(n.sum.output_scale);
    }
    t << "\n";
  }
  return t.str();
}

absl::StatusOr<DeployGraph> ParseGraphText(const std::string& text, const std::string& where) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  };
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.size() < 4 || lines[0] != kGraphMagic) return bad("unknown graph format");
  DeployGraph g;
  std::vector<std::string> head;
  for (int i = 1; i <= 3; ++i) {
    std::vector<std::string> kv = absl::StrSplit(lines[i], ' ');
    if (kv.size() != 2) return bad(absl::StrCat("bad line: ", lines[i]));
    head.push_back(kv[1]);
  }
  g.input = head[0];
  g.output = head[1];
  if (!absl::SimpleAtoi(head[2], &g.num_classes)) return bad("bad num_classes");
  static const std::map<std::string, OpKind> kinds = {
      {"normalize", OpKind::kNormalize}, {"conv", OpKind::kConv}, {"add", OpKind::kAdd},
      {"concat", OpKind::kConcat},       {"mean", OpKind::kMean}, {"expand", OpKind::kExpandLike},
      {"resize", OpKind::kResizeLike}};
  for (size_t i = 4; i < lines.size(); ++i) {
    std::vector<std::string> parts = absl::StrSplit(lines[i], ' ');
    if (parts.size() < 4 || !kinds.count(parts[0]))
      return bad(absl::StrCat("bad node: ", lines[i]));
    Node n;
    n.kind = kinds.at(parts[0]);
    n.name = parts[1];
    std::map<std::string, std::string> kv;
    for (size_t j = 2; j < parts.size(); ++j) {
      std::vector<std::string> p = absl::StrSplit(parts[j], absl::MaxSplits('=', 1));
      if (p.size() != 2) return bad(absl::StrCat("bad field ", parts[j], " of ", n.name));
      kv[p[0]] = p[1];
    }
    n.inputs = absl::StrSplit(kv["in"], ',', absl::SkipEmpty());
    n.output = kv["out"];
    if (n.kind == OpKind::kConv) {
      ConvSpec& c = n.conv;
      bool ok = absl::SimpleAtoi(kv["stride"], &c.stride) &&
                absl::SimpleAtoi(kv["padding"], &c.padding) &&
                absl::SimpleAtoi(kv["dilation"], &c.dilation) &&
                absl::SimpleAtoi(kv["groups"], &c.groups) &&
                absl::SimpleAtof(kv["input_scale"], &c.input_scale) &&
                absl::SimpleAtof(kv["output_scale"], &c.output_scale);
      const std::string& act = kv["act"];
      c.act = act == "relu" ? Act::kReLU : act == "relu6" ? Act::kReLU6 : Act::kNone;
      if (!ok || (act != "relu" && act != "relu6" && act != "none")) {
        return bad(absl::StrCat("bad conv fields of ", n.name));
      }
    }
    // Quantized adds (SLIM.quant_add); files from before have float ones.
    if (n.kind == OpKind::kAdd && kv.count("output_scale")) {
      AddSpec& s = n.sum;
      if (!absl::SimpleAtof(kv["a_scale"], &s.a_scale) ||
          !absl::SimpleAtof(kv["b_scale"], &s.b_scale) ||
          !absl::SimpleAtof(kv["output_scale"], &s.output_scale)) {
        return bad(absl::StrCat("bad add fields of ", n.name));
      }
    }
    g.nodes.push_back(std::move(n));
  }
  return g;
}

}  // namespace

absl::Status WriteTorchScript(const DeployGraph& graph, const std::string& path) {
  if (auto st = ValidateGraph(graph); !st.ok()) return st;
  try {
    torch::jit::Module m("segqat.DeployedModel");
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      const Node& n = graph.nodes[i];
      const std::string p = Prefix(i);
      if (n.kind == OpKind::kNormalize) {
        auto opts = at::TensorOptions().dtype(at::kFloat);
        m.register_buffer(p + "mul", at::tensor(n.mul, opts).view({1, -1, 1, 1}));
        m.register_buffer(p + "add", at::tensor(n.add, opts).view({1, -1, 1, 1}));
      }
      if (n.kind != OpKind::kConv) continue;
      m.register_buffer(p + "bias", n.conv.bias);
      if (n.conv.quantized()) {
        m.register_buffer(p + "weight_int8", n.conv.weight_int8);
        m.register_buffer(p + "weight_scale", n.conv.weight_scale);
        m.register_buffer(p + "step",
                          (n.conv.weight_scale * n.conv.input_scale).view({1, -1, 1, 1}));
      } else {
        m.register_buffer(p + "weight", n.conv.weight);
      }
    }
    m.register_attribute(kGraphAttribute, c10::StringType::get(), GraphText(graph));
    m.register_attribute(kActivationBitsAttribute, c10::IntType::get(),
                         static_cast<int64_t>(graph.activation_bits));
    m.define(Source(graph));
    m.define(Source(graph, /*codes=*/true));
    m.save(path);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("TorchScript export: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {  // the TorchScript compiler's ErrorReport
    return absl::InternalError(absl::StrCat("TorchScript export: ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<DeployGraph> ReadTorchScript(const std::string& path) {
  if (!std::filesystem::exists(path)) return absl::NotFoundError(absl::StrCat(path, " is missing"));
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, c10::Device(c10::kCPU));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a TorchScript archive: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a TorchScript archive: ", e.what()));
  }
  if (!m.hasattr(kGraphAttribute)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " was not exported by segqat (it has no ", kGraphAttribute, ")"));
  }
  auto g = ParseGraphText(m.attr(kGraphAttribute).toStringRef(), path);
  if (!g.ok()) return g.status();
  if (m.hasattr(kActivationBitsAttribute)) {
    const int64_t bits = m.attr(kActivationBitsAttribute).toInt();
    if (bits != 7 && bits != 8) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", bits, "-bit activations (segqat exports 7 or 8)"));
    }
    g->activation_bits = static_cast<int>(bits);
  }
  try {
    for (size_t i = 0; i < g->nodes.size(); ++i) {
      Node& n = g->nodes[i];
      const std::string p = Prefix(i);
      if (n.kind == OpKind::kNormalize) {
        at::Tensor mul = m.attr(p + "mul").toTensor().flatten().contiguous();
        at::Tensor add = m.attr(p + "add").toTensor().flatten().contiguous();
        n.mul.assign(mul.data_ptr<float>(), mul.data_ptr<float>() + mul.numel());
        n.add.assign(add.data_ptr<float>(), add.data_ptr<float>() + add.numel());
      }
      if (n.kind != OpKind::kConv) continue;
      ConvSpec& c = n.conv;
      c.bias = m.attr(p + "bias").toTensor();
      if (c.quantized()) {
        c.weight_int8 = m.attr(p + "weight_int8").toTensor();
        c.weight_scale = m.attr(p + "weight_scale").toTensor();
        c.weight = c.weight_int8.to(at::kFloat) * c.weight_scale.view({-1, 1, 1, 1});
      } else {
        c.weight = m.attr(p + "weight").toTensor();
      }
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tensors do not match its graph: ", e.what_without_backtrace()));
  }
  if (auto st = ValidateGraph(*g); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  }
  return g;
}

}  // namespace segqat::exports
