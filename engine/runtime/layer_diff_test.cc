#include "engine/runtime/layer_diff.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/export/exporter.h"
#include "engine/quant/quant_aware.h"

namespace segqat::runtime {
namespace {

// A small QAT model whose quantizers saw a few batches (its batch norms keep
// the last one's statistics, so activations keep their spread through the
// depth of the network); the same seed gives
// the same model, so one stays simulated while its twin is converted.
models::DeepLabV3Plus SmallQatModel(const Config& cfg) {
  at::manual_seed(3);
  models::DeepLabV3Plus model(models::DeepLabOptions::FromConfig(cfg));
  EXPECT_TRUE(quant::QuantAware(*model, quant::QuantConfig::FromConfig(cfg)).ok());
  at::NoGradGuard no_grad;
  model->train();
  for (int i = 0; i < 3; ++i) model->forward(at::randn({2, 3, 64, 96}));
  model->eval();
  return model;
}

class LayerDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = Config::FromYamlText(
        "DATASET: {NUM_CLASSES: 5}\n"
        "MODEL: {DEEPLAB: {DEPTH_MULTIPLIER: 0.5, ENCODER_WITH_ASPP: True, "
        "ENABLE_DECODER: True}}\n",
        {"SLIM.not_quant_pattern", "last_conv", "MODEL.BN_MOMENTUM", "0"});
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *cfg;
    simulated_ = SmallQatModel(cfg_);
    converted_ = SmallQatModel(cfg_);
    ASSERT_TRUE(quant::Convert(*converted_).ok());
    auto graph = exports::BuildDeployGraph(*converted_, cfg_, /*normalize_inside=*/false);
    ASSERT_TRUE(graph.ok()) << graph.status();
    graph_ = *graph;
  }

  LayerDiff Diff(exports::DeployGraph graph) {
    auto engine = infer::Engine::Create(std::move(graph), infer::Precision::kInt8);
    EXPECT_TRUE(engine.ok()) << engine.status();
    LayerDiffer differ(*simulated_, **engine);
    at::manual_seed(9);
    for (int i = 0; i < 2; ++i) {
      auto st = differ.Add(at::randn({2, 3, 64, 96}));
      EXPECT_TRUE(st.ok()) << st;
    }
    return differ.Result();
  }

  Config cfg_;
  models::DeepLabV3Plus simulated_{nullptr}, converted_{nullptr};
  exports::DeployGraph graph_;
};

// Every quantized conv's input and every quantized add's output, in graph
// order, with 0 differing codes: the simulation is the engine.
TEST_F(LayerDiffTest, TheEngineComputesTheSimulatedCodesEverywhere) {
  LayerDiff diff = Diff(graph_);
  EXPECT_EQ(diff.images, 4);
  int convs = 0, adds = 0;
  for (const TensorDiff& t : diff.tensors) {
    EXPECT_FALSE(t.unmatched) << t.name;
    EXPECT_GT(t.codes, 0) << t.name;
    EXPECT_EQ(t.differing, 0) << t.name;
    convs += t.op == "conv input";
    adds += t.op == "add output";
  }
  EXPECT_EQ(convs, graph_.QuantizedConvCount());
  EXPECT_EQ(adds, 10);  // MobileNetV2's residual blocks
  EXPECT_EQ(diff.tensors.front().name, "backbone.features.0.0");
  EXPECT_EQ(diff.first_divergence, "");
  EXPECT_EQ(diff.logits_max_difference, 0.0);
  EXPECT_EQ(diff.pixel_agreement, 1.0);
  auto json = nlohmann::json::parse(diff.ToJson());
  EXPECT_TRUE(json["first_divergence"].is_null());
  EXPECT_EQ(json["tensors"].size(), diff.tensors.size());
}

// The second conv's input step 2% off the simulation's (as a runtime that
// re-derived a scale would): the diff names it first, the conv before it
// stays equal, and the difference travels on to the logits.
TEST_F(LayerDiffTest, TheFirstDivergingTensorIsNamed) {
  exports::DeployGraph graph = graph_;
  std::string target;
  int quantized_convs = 0;
  for (auto& n : graph.nodes) {
    if (n.kind == exports::OpKind::kConv && n.conv.quantized() && ++quantized_convs == 2) {
      n.conv.input_scale *= 1.02f;
      target = n.name;
      break;
    }
  }
  ASSERT_FALSE(target.empty());
  LayerDiff diff = Diff(graph);
  EXPECT_EQ(diff.first_divergence, target);
  bool before = true;
  for (const TensorDiff& t : diff.tensors) {
    if (t.name == target) {
      before = false;
      EXPECT_GT(t.differing, 0);
      EXPECT_GE(t.max_difference, 1);
    } else if (before) {
      EXPECT_EQ(t.differing, 0) << t.name;
    }
  }
  EXPECT_GT(diff.logits_max_difference, 0.0) << diff.ToText();
  EXPECT_GT(diff.tensors.back().differing, 0) << diff.ToText();
  EXPECT_NE(diff.ToText().find("first divergence at " + target), std::string::npos);
}

}  // namespace
}  // namespace segqat::runtime
