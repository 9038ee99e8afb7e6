#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/nn/modules/batchnorm.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "engine/config/config.h"
#include "engine/export/deployed_ops.h"
#include "engine/export/exporter.h"
#include "engine/export/onnx_model.h"
#include "engine/export/torchscript.h"
#include "engine/infer/engine.h"
#include "engine/models/deeplab.h"
#include "engine/quant/fake_quant.h"
#include "engine/quant/quant_aware.h"
#include "engine/quant/quant_layers.h"

namespace segqat {
namespace {

// With SLIM.fold_bn, conv + BN in eval compute the folded conv by hand:
// conv(fq(x), fq(w * g/sqrt(v+eps))) + (beta - g*mean/sqrt(v+eps)).
TEST(FoldBatchNormTest, EvalComputesTheFoldedQuantizedConv) {
  at::manual_seed(1);
  quant::QConv2d conv(quant::QConv2dOptions(3, 4, 3).padding(1));
  torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(4));
  {
    at::NoGradGuard no_grad;
    bn->weight.copy_(at::tensor({0.5f, -2.0f, 1.5f, 0.0f}));
    bn->bias.copy_(at::tensor({0.1f, 0.2f, -0.3f, 0.4f}));
    bn->running_mean.copy_(at::tensor({0.3f, -0.1f, 0.2f, 0.0f}));
    bn->running_var.copy_(at::tensor({4.0f, 0.25f, 1.0f, 2.0f}));
  }
  quant::QuantConfig qc;
  qc.activation_type = quant::ActivationQuantType::kAbsMax;
  conv->EnableQuant(qc);
  conv->FoldBatchNorm(bn.ptr());
  conv->eval();
  bn->eval();
  at::Tensor x = at::randn({2, 3, 5, 5});
  at::Tensor got = bn->forward(conv->forward(x));

  at::Tensor factor = bn->weight / at::sqrt(bn->running_var + 1e-5);
  at::Tensor w = conv->weight * factor.view({-1, 1, 1, 1});
  at::Tensor wq = quant::FakeQuantPerChannel(w, quant::ChannelAbsMax(w), 8);
  at::Tensor xq = quant::FakeQuant(x, quant::AbsMax(x), 8);
  at::Tensor want =
      at::conv2d(xq, wq, {}, 1, 1) + (bn->bias - factor * bn->running_mean).view({1, -1, 1, 1});
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-5);
  // The channel with gamma 0 gives exactly its beta.
  EXPECT_LT((got.select(1, 3) - 0.4f).abs().max().item<float>(), 1e-6);
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override { Build({}); }

  // A small QAT model with ASPP and decoder, converted; `overrides` are KEY VALUE pairs.
  void Build(const std::vector<std::string>& overrides) {
    auto cfg = Config::FromYamlText(
        "DATASET: {NUM_CLASSES: 5}\n"
        "MODEL: {DEEPLAB: {DEPTH_MULTIPLIER: 0.5, ENCODER_WITH_ASPP: True, "
        "ENABLE_DECODER: True}}\n",
        overrides);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *cfg;
    at::manual_seed(0);
    model_ = models::DeepLabV3Plus(models::DeepLabOptions::FromConfig(cfg_));
    ASSERT_TRUE(quant::QuantAware(*model_, quant::QuantConfig::FromConfig(cfg_)).ok());
    at::NoGradGuard no_grad;
    model_->train();
    for (int i = 0; i < 3; ++i) model_->forward(at::randn({2, 3, 64, 96}));
    model_->eval();
    ASSERT_TRUE(quant::Convert(*model_).ok());
  }

  Config cfg_;
  models::DeepLabV3Plus model_{nullptr};
};

TEST_F(ExportTest, TorchScriptKeepsTheGraph) {
  auto graph = exports::BuildDeployGraph(*model_, cfg_, /*normalize_inside=*/true);
  ASSERT_TRUE(graph.ok()) << graph.status();
  // ASPP's image pool, its concat and the decoder's resize are all there.
  int kinds[7] = {};
  for (const auto& n : graph->nodes) ++kinds[static_cast<int>(n.kind)];
  EXPECT_EQ(kinds[static_cast<int>(exports::OpKind::kNormalize)], 1);
  EXPECT_EQ(kinds[static_cast<int>(exports::OpKind::kMean)], 1);
  EXPECT_EQ(kinds[static_cast<int>(exports::OpKind::kConcat)], 2);
  EXPECT_EQ(kinds[static_cast<int>(exports::OpKind::kResizeLike)], 2);
  // backbone 52 + ASPP 9 (pool, 1x1, three separable pairs, project) + decoder 5 + last_conv.
  EXPECT_EQ(graph->QuantizedConvCount(), 67);

  const std::string path =
      (std::filesystem::temp_directory_path() / "segqat_export_test.ts").string();
  ASSERT_TRUE(exports::WriteTorchScript(*graph, path).ok());
  auto back = exports::ReadTorchScript(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->nodes.size(), graph->nodes.size());
  for (size_t i = 0; i < graph->nodes.size(); ++i) {
    const auto &a = graph->nodes[i], &b = back->nodes[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.inputs, b.inputs);
    EXPECT_EQ(a.conv.input_scale, b.conv.input_scale) << a.name;
    EXPECT_EQ(a.conv.output_scale, b.conv.output_scale) << a.name;
    if (a.kind == exports::OpKind::kConv) {
      EXPECT_TRUE(a.conv.weight.equal(b.conv.weight)) << a.name;
      EXPECT_TRUE(a.conv.bias.equal(b.conv.bias)) << a.name;
    }
  }
}

// The engine against what it must compute:
//  - the TorchScript export of the same graph (float ops on the same codes
//    and steps): equal up to float rounding, which checks the integer
//    kernels (convs, requantization, quantized adds) exactly. Measured: 0
//    difference, 8 seeds x 7/8 bits x both rules;
//  - the converted model it came from: the same labels. The logits agree
//    to 1e-7 of their mean on most seeds; where float rounding moves a
//    value across a rounding boundary one code changes (measured on 3 of
//    8 seeds with 8-bit activations: up to 4e-4 absolute, every label the
//    same), so the labels are what is asserted (measured: all agree).
void ExpectEngineComputesTheModel(const exports::DeployGraph& graph,
                                  models::DeepLabV3PlusImpl& model, infer::X86Int8Rule rule,
                                  int want_integer_convs) {
  infer::EngineOptions options;
  options.x86_rule = rule;
  options.integer_kernels = true;
  auto engine = infer::Engine::Create(graph, infer::Precision::kInt8, options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->integer_convs(), want_integer_convs) << (*engine)->int8_rule();
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({2, 3, 64, 96});
  auto got = (*engine)->Run(x);
  ASSERT_TRUE(got.ok()) << got.status();

  const std::string path = (std::filesystem::temp_directory_path() /
                            ("segqat_engine_rule_" + std::to_string(getpid()) + ".ts"))
                               .string();
  ASSERT_TRUE(exports::WriteTorchScript(graph, path).ok());
  at::Tensor ts = torch::jit::load(path).forward({x}).toTensor();
  std::filesystem::remove(path);
  ASSERT_EQ(got->sizes(), ts.sizes());
  EXPECT_LT(((*got - ts).abs().mean() / ts.abs().mean()).item<double>(), 1e-5)
      << (*engine)->int8_rule();

  at::Tensor want = model.forward(x);
  const double agree = got->argmax(1).eq(want.argmax(1)).to(at::kFloat).mean().item<double>();
  EXPECT_GT(agree, 0.999) << (*engine)->int8_rule();
}

// Quantized convs whose output is quantized (PlanQuantizedOutputs), and of
// those the ones whose input stays within 0..127 as uint8.
std::pair<int, int> PlannedConvs(const exports::DeployGraph& graph) {
  const auto non_negative = exports::NonNegativeTensors(graph);
  int planned = 0, small_inputs = 0;
  for (const auto& n : graph.nodes) {
    if (n.kind != exports::OpKind::kConv || !n.conv.quantized() || n.conv.output_scale <= 0) {
      continue;
    }
    ++planned;
    small_inputs += exports::ExactInX86Int8Kernels(
        exports::ActivationZeroPoint(non_negative.count(n.inputs[0]) > 0, graph.max_code()),
        graph.max_code());
  }
  return {planned, small_inputs};
}

// Both x86 rules, on 8- and 7-bit activations. Without VNNI only the convs
// on inputs within 0..127 run on integers (8 bits: the ReLU-fed ones; 7
// bits: all); with VNNI every planned one does. The VNNI rule is only exact
// on a CPU that has it, so it is tested only there.
class EngineRuleTest : public ExportTest,
                       public ::testing::WithParamInterface<std::tuple<int, infer::X86Int8Rule>> {};

TEST_P(EngineRuleTest, ComputesWhatTheConvertedModelComputes) {
  const auto [bits, rule] = GetParam();
  if (infer::PreferredQEngine() != "onednn") GTEST_SKIP() << "needs oneDNN";
  if (rule == infer::X86Int8Rule::kVnni && !infer::CpuHasVnni()) {
    GTEST_SKIP() << "this CPU has no VNNI";
  }
  Build({"SLIM.activation_bits", std::to_string(bits)});
  auto graph = exports::BuildDeployGraph(*model_, cfg_, /*normalize_inside=*/false);
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(graph->activation_bits, bits);
  const auto [planned, small_inputs] = PlannedConvs(*graph);
  if (bits == 7) {
    EXPECT_EQ(small_inputs, planned);
  } else {
    EXPECT_LT(small_inputs, planned);
  }
  ExpectEngineComputesTheModel(*graph, *model_, rule,
                               rule == infer::X86Int8Rule::kVnni ? planned : small_inputs);
}

INSTANTIATE_TEST_SUITE_P(
    BitsAndRules, EngineRuleTest,
    ::testing::Combine(::testing::Values(8, 7),
                       ::testing::Values(infer::X86Int8Rule::kNoVnni, infer::X86Int8Rule::kVnni)),
    [](const auto& info) {
      return "a" + std::to_string(std::get<0>(info.param)) +
             (std::get<1>(info.param) == infer::X86Int8Rule::kVnni ? "_vnni" : "_no_vnni");
    });

// By default no conv runs on LibTorch's integer kernels (their requantizing
// is not the simulation's); asked for them, Create picks one of the two
// rules by the CPU.
TEST_F(ExportTest, EngineDetectsTheRuleFromTheCpu) {
  if (infer::PreferredQEngine() != "onednn") GTEST_SKIP() << "needs oneDNN";
  auto graph = exports::BuildDeployGraph(*model_, cfg_, false);
  ASSERT_TRUE(graph.ok());
  auto exact = infer::Engine::Create(*graph, infer::Precision::kInt8);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ((*exact)->integer_convs(), 0);
  infer::EngineOptions options;
  options.integer_kernels = true;
  auto engine = infer::Engine::Create(*graph, infer::Precision::kInt8, options);
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ((*engine)->int8_rule(), infer::CpuHasVnni() ? "vnni" : "no-vnni");
  const auto [planned, small_inputs] = PlannedConvs(*graph);
  EXPECT_EQ((*engine)->integer_convs(), infer::CpuHasVnni() ? planned : small_inputs);
}

// The promise: a simulated (fake-quant) model in eval computes what the
// INT8 engine computes from its conversion, to the bit, on every input: the
// same codes at every quantized tensor, so the same logits. 8 and 7 bits,
// quantized and float residual adds, batch norm folded into the weight's
// quantization or not, the classifier in float (not_quant_pattern).
class SimulatedIsConvertedTest : public ::testing::TestWithParam<std::tuple<int, bool, bool>> {};

TEST_P(SimulatedIsConvertedTest, EngineLogitsEqualTheSimulatedOnesExactly) {
  const auto [bits, quant_add, fold_bn] = GetParam();
  auto cfg = Config::FromYamlText(
      "DATASET: {NUM_CLASSES: 5}\n"
      "MODEL: {DEEPLAB: {DEPTH_MULTIPLIER: 0.5, ENCODER_WITH_ASPP: True, "
      "ENABLE_DECODER: True}}\n",
      {"SLIM.activation_bits", std::to_string(bits), "SLIM.quant_add", quant_add ? "True" : "False",
       "SLIM.fold_bn", fold_bn ? "True" : "False", "SLIM.not_quant_pattern", "last_conv",
       "MODEL.BN_MOMENTUM", "0"});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  at::manual_seed(bits * 4 + quant_add * 2 + fold_bn);
  models::DeepLabV3Plus model(models::DeepLabOptions::FromConfig(*cfg));
  ASSERT_TRUE(quant::QuantAware(*model, quant::QuantConfig::FromConfig(*cfg)).ok());
  at::NoGradGuard no_grad;
  model->train();
  for (int i = 0; i < 3; ++i) model->forward(at::randn({2, 3, 64, 96}));
  model->eval();
  // Inputs on both sides of the scales: plain noise, and noise 4x larger
  // (clamped codes everywhere).
  std::vector<at::Tensor> inputs = {at::randn({2, 3, 64, 96}), at::randn({1, 3, 80, 112}) * 4};
  std::vector<at::Tensor> simulated;
  for (const auto& x : inputs) {
    simulated.push_back(model->forward(x));
    // Alive to the last layer (batch norms on the last batch's statistics):
    // the logits vary over the image.
    EXPECT_GT(simulated.back().var(at::IntArrayRef{2, 3}).max().item<float>(), 1e-6);
  }

  ASSERT_TRUE(quant::Convert(*model).ok());
  auto graph = exports::BuildDeployGraph(*model, *cfg, /*normalize_inside=*/false);
  ASSERT_TRUE(graph.ok()) << graph.status();
  auto engine = infer::Engine::Create(*graph, infer::Precision::kInt8);
  ASSERT_TRUE(engine.ok()) << engine.status();
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto got = (*engine)->Run(inputs[i]);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->sizes(), simulated[i].sizes());
    EXPECT_EQ((*got - simulated[i]).abs().max().item<float>(), 0.0f) << "input " << i;
    // The converted modules compute the same too.
    EXPECT_TRUE(at::equal(model->forward(inputs[i]).contiguous(), *got)) << "input " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(BitsAddsFolding, SimulatedIsConvertedTest,
                         ::testing::Combine(::testing::Values(8, 7), ::testing::Bool(),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return "a" + std::to_string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "_quant_add" : "_float_add") +
                                  (std::get<2>(info.param) ? "_fold_bn" : "_bn_after");
                         });

// model.onnx: quantized adds as DequantizeLinear x2 -> Add -> QuantizeLinear;
// weights on 8-bit signed activations as uint8 (zero point 128) unless
// FREEZE.ONNX_INT8_WEIGHTS asks for int8 everywhere.
TEST_F(ExportTest, OnnxCarriesQuantizedAddsAndTheWeightChoice) {
  auto graph = exports::BuildDeployGraph(*model_, cfg_, false);
  ASSERT_TRUE(graph.ok());
  auto count = [&](bool int8_weights, int* uint8_weights, int* adds_fed_by_dq) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("segqat_onnx_" + std::to_string(getpid()) + ".onnx"))
                                 .string();
    exports::OnnxOptions options;
    options.int8_weights_everywhere = int8_weights;
    ASSERT_TRUE(exports::WriteOnnx(*graph, path, options).ok());
    onnx::ModelProto model;
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(model.ParseFromIstream(&in));
    std::filesystem::remove(path);
    *uint8_weights = 0;
    for (const auto& t : model.graph().initializer()) {
      *uint8_weights +=
          t.name().size() > 13 && t.name().compare(t.name().size() - 13, 13, ".weight_uint8") == 0;
    }
    std::map<std::string, std::string> producer;
    for (const auto& n : model.graph().node()) producer[n.output(0)] = n.op_type();
    *adds_fed_by_dq = 0;
    for (const auto& n : model.graph().node()) {
      if (n.op_type() != "Add" || n.input_size() != 2) continue;
      *adds_fed_by_dq +=
          producer[n.input(0)] == "DequantizeLinear" && producer[n.input(1)] == "DequantizeLinear";
    }
  };
  int uint8_weights = 0, quantized_adds = 0;
  count(false, &uint8_weights, &quantized_adds);
  EXPECT_GT(uint8_weights, 0);
  EXPECT_EQ(quantized_adds, 10);  // MobileNetV2's residual adds
  count(true, &uint8_weights, &quantized_adds);
  EXPECT_EQ(uint8_weights, 0);
}

// FREEZE.ONNX_FORM exact: each quantized conv as ConvInteger -> Cast -> Mul
// -> Add with the engine's own multiplier and bias (bit for bit), each
// quantized add as Sum of two DequantizeLinear.
TEST_F(ExportTest, TheExactOnnxFormCarriesTheEnginesEpilogue) {
  auto graph = exports::BuildDeployGraph(*model_, cfg_, false);
  ASSERT_TRUE(graph.ok());
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("segqat_onnx_exact_" + std::to_string(getpid()) + ".onnx"))
                               .string();
  exports::OnnxOptions options;
  options.form = exports::OnnxForm::kExact;
  ASSERT_TRUE(exports::WriteOnnx(*graph, path, options).ok());
  onnx::ModelProto model;
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(model.ParseFromIstream(&in));
  std::filesystem::remove(path);
  std::map<std::string, const onnx::TensorProto*> init;
  for (const auto& t : model.graph().initializer()) init[t.name()] = &t;
  std::map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : model.graph().node()) producer[n.output(0)] = &n;
  auto floats = [&](const std::string& name) {
    const std::string& raw = init.at(name)->raw_data();
    std::vector<float> v(raw.size() / sizeof(float));
    std::memcpy(v.data(), raw.data(), raw.size());
    return v;
  };
  int convs = 0;
  for (const exports::Node& n : graph->nodes) {
    if (n.kind != exports::OpKind::kConv || !n.conv.quantized()) continue;
    ++convs;
    const onnx::NodeProto* add = producer.at(exports::OnnxConvOutputName(n));
    ASSERT_EQ(add->op_type(), "Add") << n.name;
    const onnx::NodeProto* mul = producer.at(add->input(0));
    ASSERT_EQ(mul->op_type(), "Mul") << n.name;
    EXPECT_EQ(producer.at(producer.at(mul->input(0))->input(0))->op_type(), "ConvInteger");
    const exports::ConvKernel k = exports::PrepareConv(n.conv, /*on_codes=*/true);
    const at::Tensor m = k.mul.contiguous(), b = k.bias.contiguous();
    EXPECT_EQ(floats(mul->input(1)),
              std::vector<float>(m.data_ptr<float>(), m.data_ptr<float>() + m.numel()));
    EXPECT_EQ(floats(add->input(1)),
              std::vector<float>(b.data_ptr<float>(), b.data_ptr<float>() + b.numel()));
  }
  EXPECT_EQ(convs, graph->QuantizedConvCount());
  int sums = 0, quantized_linear = 0;
  for (const auto& n : model.graph().node()) {
    quantized_linear += n.op_type().rfind("QLinear", 0) == 0;
    if (n.op_type() != "Sum") continue;
    ++sums;
    EXPECT_EQ(producer.at(n.input(0))->op_type(), "DequantizeLinear");
    EXPECT_EQ(producer.at(n.input(1))->op_type(), "DequantizeLinear");
  }
  EXPECT_EQ(sums, 10);  // MobileNetV2's residual adds
  EXPECT_EQ(quantized_linear, 0);
}

TEST_F(ExportTest, WrongInputIsAClearError) {
  auto graph = exports::BuildDeployGraph(*model_, cfg_, false);
  ASSERT_TRUE(graph.ok());
  auto engine = infer::Engine::Create(*graph, infer::Precision::kInt8);
  ASSERT_TRUE(engine.ok());
  auto r = (*engine)->Run(at::randn({1, 4, 32, 32}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("N x 3 x H x W"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace segqat
