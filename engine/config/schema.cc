#include "engine/config/schema.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace segqat {
namespace {

using Ints = std::vector<int64_t>;
using Floats = std::vector<double>;
using Strs = std::vector<std::string>;

constexpr double kInf = 1e300;

KeySpec B(std::string key, bool def, std::string help) {
  return {std::move(key), ConfigType::kBool, def, std::move(help), -kInf, kInf, {}, 0};
}
KeySpec I(std::string key, int64_t def, double min, double max, std::string help) {
  return {std::move(key), ConfigType::kInt, def, std::move(help), min, max, {}, 0};
}
KeySpec F(std::string key, double def, double min, double max, std::string help) {
  return {std::move(key), ConfigType::kFloat, def, std::move(help), min, max, {}, 0};
}
KeySpec S(std::string key, std::string def, std::string help, Strs choices = {}) {
  return {std::move(key),
          ConfigType::kString,
          std::move(def),
          std::move(help),
          -kInf,
          kInf,
          std::move(choices),
          0};
}
KeySpec IL(std::string key, Ints def, double min, size_t length, std::string help,
           double max = kInf) {
  return {std::move(key), ConfigType::kInts, std::move(def), std::move(help), min, max, {}, length};
}

// The largest image side anything is cropped, padded or resized to: twice a
// Cityscapes frame's width. A job must not be able to ask a worker for a
// 30000x30000 tensor.
constexpr double kMaxSide = 8192;
KeySpec FL(std::string key, Floats def, double min, double max, size_t length, std::string help) {
  return {std::move(key), ConfigType::kFloats, std::move(def), std::move(help), min, max, {},
          length};
}
KeySpec SL(std::string key, Strs def, std::string help, Strs choices = {}) {
  return {std::move(key),
          ConfigType::kStrings,
          std::move(def),
          std::move(help),
          -kInf,
          kInf,
          std::move(choices),
          0};
}

std::vector<KeySpec> BuildSchema() {
  return {
      // Top level (PaddleSeg cfg.*).
      I("BATCH_SIZE", 1, 1, 4096, "images per training step"),
      IL("TRAIN_CROP_SIZE", {512, 512}, 8, 2, "(width, height) of training crops", kMaxSide),
      IL("EVAL_CROP_SIZE", {2049, 1025}, 8, 2, "(width, height) evaluation images are padded to",
         kMaxSide),
      FL("MEAN", {0.5, 0.5, 0.5}, -kInf, kInf, 3, "per-channel mean of image/255"),
      FL("STD", {0.5, 0.5, 0.5}, 1e-6, kInf, 3, "per-channel std of image/255"),
      // DATALOADER.
      I("DATALOADER.NUM_WORKERS", 2, 1, 64, "decoding and augmentation threads"),
      I("DATALOADER.BUF_SIZE", 8, 1, 1024, "batches prepared ahead of the trainer"),
      // DATASET.
      S("DATASET.DATA_DIR", "./dataset/cityscapes/", "root that file-list paths are relative to"),
      S("DATASET.TRAIN_FILE_LIST", "",
        "PaddleSeg file list; empty: scan DATA_DIR's Cityscapes layout (split train)"),
      S("DATASET.VAL_FILE_LIST", "", "file list for evaluation; empty: Cityscapes layout (val)"),
      S("DATASET.TEST_FILE_LIST", "", "file list for testing"),
      S("DATASET.VIS_FILE_LIST", "", "file list for visualisation"),
      I("DATASET.TRAIN_TOTAL_IMAGES", 0, 0, kInf, "informational"),
      I("DATASET.VAL_TOTAL_IMAGES", 0, 0, kInf, "informational"),
      I("DATASET.TEST_TOTAL_IMAGES", 0, 0, kInf, "informational"),
      I("DATASET.NUM_CLASSES", 19, 2, 255, "number of classes"),
      I("DATASET.DATA_DIM", 3, 3, 3, "image channels (3)"),
      S("DATASET.IMAGE_TYPE", "rgb", "image colour type", {"rgb"}),
      S("DATASET.SEPARATOR", " ", "separator between image and label in file lists"),
      I("DATASET.IGNORE_INDEX", 255, 0, 255, "label value excluded from loss and metrics"),
      FL("DATASET.PADDING_VALUE", {127.5, 127.5, 127.5}, 0, 255, 3, "image padding colour"),
      // AUG.
      S("AUG.AUG_METHOD", "stepscaling", "resize policy",
        {"unpadding", "stepscaling", "rangescaling"}),
      IL("AUG.FIX_RESIZE_SIZE", {500, 500}, 8, 2, "(width, height) for unpadding", kMaxSide),
      I("AUG.INF_RESIZE_VALUE", 500, 8, kMaxSide, "long side at evaluation, rangescaling"),
      I("AUG.MAX_RESIZE_VALUE", 600, 8, kMaxSide, "largest long side, rangescaling"),
      I("AUG.MIN_RESIZE_VALUE", 400, 8, kMaxSide, "smallest long side, rangescaling"),
      F("AUG.MAX_SCALE_FACTOR", 2.0, 0.01, 100, "largest scale, stepscaling"),
      F("AUG.MIN_SCALE_FACTOR", 0.5, 0.01, 100, "smallest scale, stepscaling"),
      F("AUG.SCALE_STEP_SIZE", 0.25, 0, 100, "scale step, stepscaling (0: continuous)"),
      B("AUG.MIRROR", true, "random horizontal flip"),
      B("AUG.FLIP", false, "random vertical flip"),
      F("AUG.FLIP_RATIO", 0.5, 0, 1, "probability of a vertical flip"),
      B("AUG.RICH_CROP.ENABLE", false, "not supported; must stay False"),
      // TRAIN.
      S("TRAIN.MODEL_SAVE_DIR", "./saved_model/", "snapshots go to MODEL_SAVE_DIR/<epoch>"),
      S("TRAIN.PRETRAINED_MODEL_DIR", "", "float weights to start from (segqat or PyTorch)"),
      S("TRAIN.RESUME_MODEL_DIR", "", "snapshot to resume exactly"),
      I("TRAIN.SNAPSHOT_EPOCH", 10, 1, 1e6, "save a snapshot every N epochs"),
      B("TRAIN.SYNC_BATCH_NORM", false,
        "data-parallel jobs: BatchNorm statistics of the global batch, not of each rank's slice"),
      I("TRAIN.SEED", 1, 0, kInf, "seed of initialisation, shuffling and augmentation"),
      // TEST.
      S("TEST.TEST_MODEL", "", "checkpoint directory to evaluate or export"),
      // FREEZE.
      S("FREEZE.MODEL_FILENAME", "__model__", "exported model file name"),
      S("FREEZE.PARAMS_FILENAME", "__params__", "exported parameters file name"),
      S("FREEZE.SAVE_DIR", "freeze_model", "export directory"),
      B("FREEZE.ONNX_INT8_WEIGHTS", false,
        "model.onnx: int8 weights on signed activations too (fast and exact on CPUs with VNNI, "
        "GPUs, TensorRT; saturates on x86 without VNNI)"),
      S("FREEZE.ONNX_FORM", "qdq",
        "model.onnx: qdq (QuantizeLinear/DequantizeLinear pairs, fused by ONNX Runtime and "
        "TensorRT) or exact (ConvInteger and float requantization: ONNX Runtime computes the INT8 "
        "engine's codes)",
        {"qdq", "exact"}),
      // SOLVER.
      F("SOLVER.LR", 0.1, 0, 100, "base learning rate"),
      S("SOLVER.LR_POLICY", "poly", "learning-rate schedule", {"poly", "piecewise", "cosine"}),
      S("SOLVER.OPTIMIZER", "sgd", "optimizer", {"sgd"}),
      F("SOLVER.MOMENTUM", 0.9, 0, 1, "SGD momentum"),
      F("SOLVER.POWER", 0.9, 0, 100, "poly power"),
      F("SOLVER.GAMMA", 0.1, 0, 1, "piecewise decay factor"),
      IL("SOLVER.DECAY_EPOCH", {10, 20}, 1, 0, "piecewise decay epochs"),
      F("SOLVER.WEIGHT_DECAY", 4e-5, 0, 1, "L2 weight decay"),
      I("SOLVER.BEGIN_EPOCH", 1, 1, 1e6, "first epoch number"),
      I("SOLVER.NUM_EPOCHS", 30, 1, 1e6, "number of epochs"),
      SL("SOLVER.LOSS", {"softmax_loss"}, "loss", {"softmax_loss"}),
      B("SOLVER.LR_WARMUP", false, "linear warm-up"),
      I("SOLVER.LR_WARMUP_STEPS", 2000, 0, 1e9, "warm-up steps"),
      // MODEL.
      S("MODEL.MODEL_NAME", "deeplabv3p", "network", {"deeplabv3p"}),
      S("MODEL.DEFAULT_NORM_TYPE", "bn", "normalisation", {"bn"}),
      F("MODEL.DEFAULT_EPSILON", 1e-5, 1e-12, 1, "batch-norm epsilon"),
      F("MODEL.BN_MOMENTUM", 0.99, 0, 1,
        "PaddleSeg batch-norm momentum (running = m*running + (1-m)*batch)"),
      B("MODEL.FP16", false, "not supported; must stay False"),
      S("MODEL.DEEPLAB.BACKBONE", "mobilenetv2", "backbone", {"mobilenetv2"}),
      I("MODEL.DEEPLAB.OUTPUT_STRIDE", 16, 8, 32, "8, 16 or 32"),
      F("MODEL.DEEPLAB.DEPTH_MULTIPLIER", 1.0, 0.1, 4, "MobileNetV2 width multiplier"),
      B("MODEL.DEEPLAB.ENCODER_WITH_ASPP", true, "ASPP encoder"),
      B("MODEL.DEEPLAB.ENABLE_DECODER", true, "DeepLabv3+ decoder"),
      B("MODEL.DEEPLAB.ASPP_WITH_SEP_CONV", true, "separable convolutions in ASPP"),
      B("MODEL.DEEPLAB.DECODER_USE_SEP_CONV", true, "separable convolutions in the decoder"),
      // SLIM (PaddleSlim quant_aware config).
      B("SLIM.PREPROCESS", false, "exported models normalise raw 0-255 RGB inside"),
      S("SLIM.weight_quantize_type", "channel_wise_abs_max", "weight quantizer",
        {"channel_wise_abs_max", "abs_max"}),
      S("SLIM.activation_quantize_type", "moving_average_abs_max", "activation quantizer",
        {"moving_average_abs_max", "abs_max", "range_abs_max"}),
      I("SLIM.weight_bits", 8, 2, 16, "weight bits"),
      I("SLIM.activation_bits", 8, 2, 16, "activation bits"),
      SL("SLIM.quantize_op_types", {"conv2d", "depthwise_conv2d", "mul"}, "layer kinds to quantize",
         {"conv2d", "depthwise_conv2d", "mul"}),
      SL("SLIM.not_quant_pattern", {"skip_quant"}, "layers whose name contains one stay float"),
      I("SLIM.window_size", 10000, 1, 1000000, "range_abs_max window"),
      F("SLIM.moving_rate", 0.9, 0, 1, "moving_average_abs_max rate"),
      S("SLIM.dtype", "int8", "quantized type", {"int8"}),
      B("SLIM.fold_bn", true,
        "quantize conv weights with the following batch norm folded in, as they are exported"),
      B("SLIM.quant_add", true,
        "quantize residual adds (both addends and the sum), so the int8 model keeps them in int8"),
  };
}

}  // namespace

const std::vector<KeySpec>& Schema() {
  static const std::vector<KeySpec>* schema = new std::vector<KeySpec>(BuildSchema());
  return *schema;
}

const KeySpec* FindKey(const std::string& key) {
  static const std::map<std::string, const KeySpec*>* index = [] {
    auto* m = new std::map<std::string, const KeySpec*>();
    for (const KeySpec& k : Schema()) (*m)[k.key] = &k;
    return m;
  }();
  auto it = index->find(key);
  return it == index->end() ? nullptr : it->second;
}

std::string TypeName(const KeySpec& spec) {
  std::string n = spec.length ? absl::StrCat(spec.length, " ") : "";
  switch (spec.type) {
    case ConfigType::kBool:
      return "bool (True/False)";
    case ConfigType::kInt:
      return "int";
    case ConfigType::kFloat:
      return "float";
    case ConfigType::kString:
      return "string";
    case ConfigType::kInts:
      return absl::StrCat("list of ", n, "ints");
    case ConfigType::kFloats:
      return absl::StrCat("list of ", n, "floats");
    case ConfigType::kStrings:
      return "list of strings";
  }
  return "?";
}

}  // namespace segqat
