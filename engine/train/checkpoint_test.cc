#include "engine/train/checkpoint.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/serialize.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "engine/models/deeplab.h"
#include "engine/quant/quant_aware.h"

namespace segqat {
namespace {
namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("segqat_ckpt_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ASSERT_TRUE(cfg_.SetFromString("DATASET.NUM_CLASSES", "5").ok());
    ASSERT_TRUE(cfg_.SetFromString("MODEL.DEEPLAB.DEPTH_MULTIPLIER", "0.35").ok());
    ASSERT_TRUE(cfg_.SetFromString("MODEL.DEEPLAB.ENCODER_WITH_ASPP", "False").ok());
    ASSERT_TRUE(cfg_.SetFromString("MODEL.DEEPLAB.ENABLE_DECODER", "False").ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  models::DeepLabV3Plus Model() {
    return models::DeepLabV3Plus(models::DeepLabOptions::FromConfig(cfg_));
  }
  fs::path dir_;
  Config cfg_;
};

TEST_F(CheckpointTest, QuantizedModelRoundTripsWithQuantizerState) {
  at::manual_seed(1);
  auto model = Model();
  ASSERT_TRUE(quant::QuantAware(*model, quant::QuantConfig{}).ok());
  at::Tensor x = at::randn({2, 3, 64, 64});
  model->train();
  model->forward(x);
  model->forward(x * 2);
  CheckpointMeta meta;
  meta.epoch = 3;
  meta.step = 42;
  meta.quantized = true;
  meta.miou = 0.5;
  const std::string dir = (dir_ / "3").string();
  ASSERT_TRUE(SaveCheckpoint(dir, *model, {{"last_conv.bias", at::ones({5})}}, meta, cfg_).ok());

  auto ck = ReadCheckpoint(dir);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->meta.epoch, 3);
  EXPECT_EQ(ck->meta.step, 42);
  EXPECT_TRUE(ck->meta.quantized);
  EXPECT_DOUBLE_EQ(*ck->meta.miou, 0.5);
  EXPECT_TRUE(ck->config == cfg_) << ck->config.ToYaml() << "\n---\n" << cfg_.ToYaml();

  auto restored = Model();
  ASSERT_TRUE(quant::QuantAware(*restored, quant::QuantConfig{}).ok());
  ASSERT_TRUE(LoadModelState(dir, *restored).ok());
  auto a = NamedState(*model), b = NamedState(*restored);
  const std::string scale = "backbone.features.0.0.input_quant.scale";
  ASSERT_TRUE(b.count(scale));
  EXPECT_NE(b[scale].item<float>(), 0.001f);  // moved from its initial value
  for (const auto& [name, t] : a) EXPECT_TRUE(at::equal(t, b[name])) << name;
  model->eval();
  restored->eval();
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(model->forward(x), restored->forward(x)));
  auto momentum = LoadOptimizerState(dir);
  ASSERT_TRUE(momentum.ok());
  EXPECT_TRUE(at::equal(momentum->at("last_conv.bias"), at::ones({5})));
}

// A QAT checkpoint from before SLIM.quant_add (its config.yaml lacks the
// key, its model.pt the add quantizers) loads with float adds and says so.
TEST_F(CheckpointTest, CheckpointsFromBeforeQuantAddLoadWithFloatAdds) {
  at::manual_seed(1);
  auto model = Model();
  quant::QuantConfig old;
  old.quant_add = false;
  ASSERT_TRUE(quant::QuantAware(*model, old).ok());
  CheckpointMeta meta;
  meta.quantized = true;
  Config cfg = cfg_;
  ASSERT_TRUE(cfg.SetFromString("SLIM.quant_add", "False").ok());
  const std::string dir = (dir_ / "old").string();
  ASSERT_TRUE(SaveCheckpoint(dir, *model, {}, meta, cfg).ok());
  // Remove the key from the written config, as older segqat wrote it.
  const fs::path yaml = fs::path(dir) / "config.yaml";
  std::ifstream in(yaml);
  std::string text((std::istreambuf_iterator<char>(in)), {}), kept;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("quant_add") == std::string::npos) kept += line + "\n";
  }
  ASSERT_NE(kept.size(), text.size());
  std::ofstream(yaml, std::ios::trunc) << kept;

  auto ck = ReadCheckpoint(dir);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_FALSE(ck->config.Bool("SLIM.quant_add"));
  ASSERT_EQ(ck->notes.size(), 1u);
  EXPECT_NE(ck->notes[0].find("predates SLIM.quant_add"), std::string::npos) << ck->notes[0];
  auto restored = Model();
  ASSERT_TRUE(quant::QuantAware(*restored, quant::QuantConfig::FromConfig(ck->config)).ok());
  EXPECT_TRUE(LoadModelState(dir, *restored).ok());
  // The same checkpoint read by a model with quantized adds names what it lacks.
  auto with_adds = Model();
  ASSERT_TRUE(quant::QuantAware(*with_adds, quant::QuantConfig{}).ok());
  auto st = LoadModelState(dir, *with_adds);
  EXPECT_NE(st.message().find(".add."), std::string::npos) << st;
  // A new checkpoint has no note.
  const std::string fresh = (dir_ / "new").string();
  ASSERT_TRUE(SaveCheckpoint(fresh, *with_adds, {}, meta, cfg_).ok());
  auto ck2 = ReadCheckpoint(fresh);
  ASSERT_TRUE(ck2.ok());
  EXPECT_TRUE(ck2->notes.empty());
  EXPECT_TRUE(ck2->config.Bool("SLIM.quant_add"));
}

TEST_F(CheckpointTest, AnotherArchitectureIsRefusedByName) {
  const std::string dir = (dir_ / "final").string();
  auto model = Model();
  ASSERT_TRUE(SaveCheckpoint(dir, *model, {}, {}, cfg_).ok());
  Config other = cfg_;
  ASSERT_TRUE(other.SetFromString("DATASET.NUM_CLASSES", "19").ok());
  ASSERT_TRUE(other.SetFromString("MODEL.DEEPLAB.ENCODER_WITH_ASPP", "True").ok());
  absl::Status st = CheckSameArchitecture(dir, cfg_, other);
  ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("DATASET.NUM_CLASSES 5 (config: 19)"), std::string::npos) << st;
  EXPECT_NE(st.message().find("MODEL.DEEPLAB.ENCODER_WITH_ASPP False"), std::string::npos) << st;
  // The tensors themselves do not fit either.
  auto bigger = models::DeepLabV3Plus(models::DeepLabOptions::FromConfig(other));
  st = LoadModelState(dir, *bigger);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("does not fit"), std::string::npos) << st;
}

TEST_F(CheckpointTest, CorruptFilesAreNamed) {
  fs::create_directories(dir_ / "bad");
  std::ofstream(dir_ / "bad" / "model.pt") << "not a tensor file";
  auto model = Model();
  absl::Status st = LoadModelState((dir_ / "bad").string(), *model);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("model.pt"), std::string::npos) << st;
  EXPECT_EQ(ReadCheckpoint((dir_ / "bad").string()).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(dir_ / "bad" / "checkpoint.yaml") << "format: [";
  EXPECT_EQ(ReadCheckpoint((dir_ / "bad").string()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckpointTest, PretrainedAcceptsTorchvisionNames) {
  auto donor = Model();
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& p : donor->named_parameters()) {
    std::string name = p.key();
    if (name.rfind("backbone.", 0) == 0) name = name.substr(9);  // torchvision spelling
    dict.insert(name, p.value().detach() + 1);
  }
  dict.insert("classifier.1.weight", at::zeros({1000, 1280}));
  fs::create_directories(dir_ / "torchvision");
  std::vector<char> bytes = torch::pickle_save(dict);
  std::ofstream(dir_ / "torchvision" / "mobilenet_v2.pth", std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));

  auto model = Model();
  auto report = LoadPretrained((dir_ / "torchvision").string(), *model);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->skipped, std::vector<std::string>{"classifier.1.weight"});
  EXPECT_TRUE(at::equal(model->named_parameters()["backbone.features.0.0.weight"],
                        donor->named_parameters()["backbone.features.0.0.weight"] + 1));
  EXPECT_TRUE(at::equal(model->named_parameters()["last_conv.weight"],
                        donor->named_parameters()["last_conv.weight"] + 1));
  // Buffers (BN statistics) were not in this dict and stay as initialised.
  EXPECT_FALSE(report->missing.empty());

  EXPECT_EQ(LoadPretrained((dir_ / "nowhere").string(), *model).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace segqat

namespace segqat {
namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(SEGQAT_SOURCE_DIR) + "/" + relative, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(TensorFileTest, PyTorchFilesParseAndMalformedZipsAreRefusedBeforeLibTorch) {
  // torch.save({"conv.weight": ones(2, 3), "bn.running_var": arange(3.)}) by python3-torch.
  const std::string saved = ReadSource("tests/fuzz/corpus/fuzz_tensor_file/state_dict");
  ASSERT_FALSE(saved.empty());
  auto tensors = ParseTensorFile(saved, "state_dict");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ASSERT_EQ(tensors->size(), 2u);
  EXPECT_TRUE(at::equal(tensors->at("bn.running_var"), at::arange(3.0, at::kFloat)));
  // Found by fuzz_tensor_file: a record size of 0xFFFFFFFF made LibTorch's zip
  // reader read past the end of the buffer (a crash, not an error).
  const std::string bad =
      ReadSource("tests/fuzz/regressions/fuzz_tensor_file/zip64_size_marker_reads_out_of_bounds");
  ASSERT_FALSE(bad.empty());
  auto refused = ParseTensorFile(bad, "model.pt");
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("model.pt is not a readable tensor file"),
            std::string::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseTensorFile("not a zip", "x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseTensorFile(saved.substr(0, 100), "x").status()));
}

}  // namespace
}  // namespace segqat

namespace segqat {
namespace {

// Found by fuzz_tensor_file: a well-formed zip whose pickle makes LibTorch ask
// for a 4 PB string. Outside AddressSanitizer (which aborts on the request)
// operator new throws, and the file is refused with a status: no crash.
TEST(TensorFileTest, AFileAskingForMoreMemoryThanExistsIsAnError) {
  const std::string path =
      std::string(SEGQAT_SOURCE_DIR) +
      "/tests/fuzz/libtorch_allocations/fuzz_tensor_file/size-too-big-6c9d926d";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path;
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto tensors = ParseTensorFile(bytes, "fuzz input");
  EXPECT_FALSE(tensors.ok());
  EXPECT_NE(std::string(tensors.status().message()).find("fuzz input"), std::string::npos)
      << tensors.status();
}

}  // namespace
}  // namespace segqat
