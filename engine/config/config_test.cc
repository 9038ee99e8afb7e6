#include "engine/config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "job/flags.h"

namespace segqat {
namespace {

std::string SeedConfig() {
  return std::string(SEGQAT_SOURCE_DIR) + "/configs/deeplabv3p_mobilenetv2_cityscapes.yaml";
}

TEST(ConfigTest, SlimDefaultsArePaddleSlims) {
  Config c;
  EXPECT_EQ(c.Str("SLIM.weight_quantize_type"), "channel_wise_abs_max");
  EXPECT_EQ(c.Str("SLIM.activation_quantize_type"), "moving_average_abs_max");
  EXPECT_EQ(c.Int("SLIM.weight_bits"), 8);
  EXPECT_EQ(c.Int("SLIM.activation_bits"), 8);
  EXPECT_EQ(c.Strs("SLIM.quantize_op_types"),
            (std::vector<std::string>{"conv2d", "depthwise_conv2d", "mul"}));
  EXPECT_EQ(c.Strs("SLIM.not_quant_pattern"), std::vector<std::string>{"skip_quant"});
  EXPECT_EQ(c.Int("SLIM.window_size"), 10000);
  EXPECT_DOUBLE_EQ(c.Float("SLIM.moving_rate"), 0.9);
  EXPECT_EQ(c.Str("SLIM.dtype"), "int8");
}

TEST(ConfigTest, SeedConfigCarriesTheSeedsValues) {
  auto c = Config::Load(SeedConfig(), {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->Int("DATASET.NUM_CLASSES"), 19);
  EXPECT_EQ(c->Int("DATASET.IGNORE_INDEX"), 255);
  EXPECT_EQ(c->Ints("TRAIN_CROP_SIZE"), (std::vector<int64_t>{769, 769}));
  EXPECT_EQ(c->Floats("MEAN"), (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(c->Str("AUG.AUG_METHOD"), "stepscaling");
  EXPECT_DOUBLE_EQ(c->Float("AUG.MIN_SCALE_FACTOR"), 0.5);
  EXPECT_DOUBLE_EQ(c->Float("AUG.MAX_SCALE_FACTOR"), 2.0);
  EXPECT_DOUBLE_EQ(c->Float("AUG.SCALE_STEP_SIZE"), 0.25);
  EXPECT_TRUE(c->Bool("AUG.MIRROR"));
  EXPECT_DOUBLE_EQ(c->Float("SOLVER.MOMENTUM"), 0.9);
  EXPECT_DOUBLE_EQ(c->Float("SOLVER.WEIGHT_DECAY"), 4e-5);
  EXPECT_DOUBLE_EQ(c->Float("SOLVER.POWER"), 0.9);
  EXPECT_EQ(c->Str("MODEL.DEEPLAB.BACKBONE"), "mobilenetv2");
  EXPECT_EQ(c->Int("MODEL.DEEPLAB.OUTPUT_STRIDE"), 16);
  EXPECT_DOUBLE_EQ(c->Float("MODEL.DEEPLAB.DEPTH_MULTIPLIER"), 1.0);
  // u"..." as PaddleSeg's configs write paths.
  EXPECT_EQ(c->Str("TRAIN.PRETRAINED_MODEL_DIR"),
            "./pretrained_model/deeplabv3p_mobilenetv2-1-0_bn_coco");
}

TEST(ConfigTest, OverridesAreTypedByTheSchema) {
  auto c =
      Config::Load(SeedConfig(), {"BATCH_SIZE", "16", "MODEL.DEEPLAB.ENCODER_WITH_ASPP", "False",
                                  "SOLVER.LR", "0.0001", "TRAIN_CROP_SIZE", "(512, 256)",
                                  "SLIM.not_quant_pattern", "last_conv", "TRAIN.MODEL_SAVE_DIR",
                                  "./snapshots/mobilenetv2_quant", "SOLVER.NUM_EPOCHS", "30"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->Int("BATCH_SIZE"), 16);
  EXPECT_FALSE(c->Bool("MODEL.DEEPLAB.ENCODER_WITH_ASPP"));
  EXPECT_DOUBLE_EQ(c->Float("SOLVER.LR"), 0.0001);
  EXPECT_EQ(c->Ints("TRAIN_CROP_SIZE"), (std::vector<int64_t>{512, 256}));
  EXPECT_EQ(c->Strs("SLIM.not_quant_pattern"), std::vector<std::string>{"last_conv"});
  EXPECT_EQ(c->Str("TRAIN.MODEL_SAVE_DIR"), "./snapshots/mobilenetv2_quant");
  EXPECT_EQ(c->Int("SOLVER.NUM_EPOCHS"), 30);
}

TEST(ConfigTest, ListOverrideInPythonSyntax) {
  Config c;
  ASSERT_TRUE(c.SetFromString("SLIM.not_quant_pattern", "['last_conv', 'aspp']").ok());
  EXPECT_EQ(c.Strs("SLIM.not_quant_pattern"), (std::vector<std::string>{"last_conv", "aspp"}));
  ASSERT_TRUE(c.SetFromString("SOLVER.LR", "1").ok());  // an int where a float goes
  EXPECT_DOUBLE_EQ(c.Float("SOLVER.LR"), 1.0);
}

void ExpectError(const absl::Status& st, const std::string& starts_with,
                 const std::string& contains) {
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(std::string(st.message()).rfind(starts_with, 0), 0u) << st;
  EXPECT_NE(std::string(st.message()).find(contains), std::string::npos) << st;
}

TEST(ConfigTest, UnknownKeyInYamlIsNamedWithASuggestion) {
  auto c = Config::FromYamlText("TRAIN:\n  SNAPSHOT_EPOCHS: 3\n", {});
  ExpectError(c.status(), "TRAIN.SNAPSHOT_EPOCHS", "did you mean TRAIN.SNAPSHOT_EPOCH");
}

TEST(ConfigTest, UnknownOverrideKeyIsNamed) {
  auto c = Config::FromYamlText("", {"SOLVER.LEARNING_RATE", "0.1"});
  ExpectError(c.status(), "SOLVER.LEARNING_RATE", "unknown config key");
}

TEST(ConfigTest, WrongTypeIsNamed) {
  ExpectError(Config::FromYamlText("", {"BATCH_SIZE", "sixteen"}).status(), "BATCH_SIZE",
              "expects an int");
  ExpectError(Config::FromYamlText("", {"AUG.MIRROR", "maybe"}).status(), "AUG.MIRROR", "bool");
  ExpectError(Config::FromYamlText("TRAIN_CROP_SIZE: (769, 769, 3)\n", {}).status(),
              "TRAIN_CROP_SIZE", "list of 2 ints");
  ExpectError(Config::FromYamlText("DATASET: 3\n", {}).status(), "DATASET", "unknown config key");
}

TEST(ConfigTest, OutOfRangeIsNamed) {
  ExpectError(Config::FromYamlText("", {"BATCH_SIZE", "0"}).status(), "BATCH_SIZE", "out of range");
  ExpectError(Config::FromYamlText("", {"SLIM.weight_bits", "17"}).status(), "SLIM.weight_bits",
              "out of range");
  ExpectError(Config::FromYamlText("", {"SLIM.moving_rate", "1.5"}).status(), "SLIM.moving_rate",
              "out of range");
  ExpectError(Config::FromYamlText("", {"SLIM.weight_quantize_type", "lsq"}).status(),
              "SLIM.weight_quantize_type", "channel_wise_abs_max");
  ExpectError(Config::FromYamlText("", {"MODEL.DEEPLAB.OUTPUT_STRIDE", "12"}).status(),
              "MODEL.DEEPLAB.OUTPUT_STRIDE", "8, 16 or 32");
  ExpectError(Config::FromYamlText("", {"AUG.MIN_SCALE_FACTOR", "3"}).status(),
              "AUG.MIN_SCALE_FACTOR", "MAX_SCALE_FACTOR");
}

TEST(ConfigTest, NanAndHugeValuesAreOutOfRange) {
  for (const char* nan : {"nan", "NaN"}) {
    ExpectError(Config::FromYamlText("", {"SOLVER.LR", nan}).status(), "SOLVER.LR", "out of range");
  }
  ExpectError(Config::FromYamlText("", {"SOLVER.LR", "inf"}).status(), "SOLVER.LR", "out of range");
  // Would overflow the step count (epochs x steps per epoch).
  ExpectError(Config::FromYamlText("", {"SOLVER.NUM_EPOCHS", "9223372036854775807"}).status(),
              "SOLVER.NUM_EPOCHS", "out of range");
}

TEST(ConfigTest, OddOverridesNameTheDanglingKey) {
  ExpectError(Config::FromYamlText("", {"BATCH_SIZE"}).status(), "BATCH_SIZE", "no value");
}

TEST(ConfigTest, MissingFileIsNotFound) {
  auto c = Config::Load("/nonexistent/x.yaml", {});
  ASSERT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(c.status().message()).find("/nonexistent/x.yaml"), std::string::npos);
}

TEST(ConfigTest, BadYamlIsInvalidArgument) {
  auto c = Config::FromYamlText("TRAIN: [unclosed\n", {});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, ImageSizesAndTheBatchHaveUpperBounds) {
  // What OOM-killed segqatd: a 30000x30000 crop, accepted before.
  auto c = Config::FromYamlText("", {"TRAIN_CROP_SIZE", "(30000, 30000)"});
  ExpectError(c.status(), "TRAIN_CROP_SIZE", "out of range (must be in [8, 8192])");
  for (const char* key : {"EVAL_CROP_SIZE", "AUG.FIX_RESIZE_SIZE"}) {
    ExpectError(Config::FromYamlText("", {key, "(512, 9000)"}).status(), key, "out of range");
  }
  for (const char* key : {"AUG.MAX_RESIZE_VALUE", "AUG.INF_RESIZE_VALUE"}) {
    ExpectError(Config::FromYamlText("", {key, "100000"}).status(), key, "out of range");
  }
  // 8192x8192 is a legal crop, but not 4 of them in one step (256 Mpixel).
  EXPECT_TRUE(Config::FromYamlText("", {"TRAIN_CROP_SIZE", "(8192, 4096)"}).ok());
  ExpectError(
      Config::FromYamlText("", {"TRAIN_CROP_SIZE", "(8192, 8192)", "BATCH_SIZE", "4"}).status(),
      "BATCH_SIZE", "BATCH_SIZE x TRAIN_CROP_SIZE is 268.435 Mpixel a step; at most 33.5544");
  EXPECT_TRUE(
      Config::FromYamlText("", {"TRAIN_CROP_SIZE", "(2048, 1024)", "BATCH_SIZE", "16"}).ok());
}

TEST(ConfigTest, ToYamlRoundTrips) {
  auto c = Config::Load(SeedConfig(), {"SOLVER.LR", "0.0001", "DATASET.SEPARATOR", " ",
                                       "SLIM.not_quant_pattern", "[]"});
  ASSERT_TRUE(c.ok()) << c.status();
  auto back = Config::FromYamlText(c->ToYaml(), {});
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << c->ToYaml();
  EXPECT_TRUE(*back == *c) << c->ToYaml() << "\n---\n" << back->ToYaml();
  EXPECT_EQ(back->Str("DATASET.SEPARATOR"), " ");
}

TEST(FlagsTest, MultiValueFlagStopsAtConfigKeys) {
  auto f = ParseFlags({"--not_quant_pattern", "last_conv", "aspp", "--cfg", "x.yaml", "BATCH_SIZE",
                       "4", "TRAIN.MODEL_SAVE_DIR", "out"},
                      {{"--cfg", true}, {"--not_quant_pattern", true, true}});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->values.at("--not_quant_pattern"), (std::vector<std::string>{"last_conv", "aspp"}));
  EXPECT_EQ(f->Get("--cfg"), "x.yaml");
  EXPECT_EQ(f->overrides,
            (std::vector<std::string>{"BATCH_SIZE", "4", "TRAIN.MODEL_SAVE_DIR", "out"}));
  auto g = ParseFlags({"--not_quant_pattern", "last_conv", "BATCH_SIZE", "4"},
                      {{"--not_quant_pattern", true, true}});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->values.at("--not_quant_pattern"), std::vector<std::string>{"last_conv"});
}

TEST(FlagsTest, UnknownFlagAndKeyAreNamed) {
  EXPECT_NE(std::string(ParseFlags({"--quantize"}, {{"--quant", false}}).status().message())
                .find("--quantize"),
            std::string::npos);
  EXPECT_FALSE(ParseFlags({"--cfg"}, {{"--cfg", true}}).ok());
}

}  // namespace
}  // namespace segqat
