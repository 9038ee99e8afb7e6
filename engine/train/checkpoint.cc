#include "engine/train/checkpoint.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <torch/serialize.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/models/deeplab.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_layers.h"
#include "engine/train/tensor_file.h"

namespace segqat {
namespace fs = std::filesystem;
namespace {

constexpr char kModelFile[] = "model.pt";
constexpr char kOptimizerFile[] = "optimizer.pt";
constexpr char kConfigFile[] = "config.yaml";
constexpr char kMetaFile[] = "checkpoint.yaml";

// fsync of a directory, so the names in it (a rename) are on disk too.
void SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

absl::Status CopyInto(at::Tensor& dst, const at::Tensor& src) {
  at::NoGradGuard no_grad;
  dst.copy_(src.to(dst.device(), dst.scalar_type()));
  return absl::OkStatus();
}

}  // namespace

std::map<std::string, at::Tensor> NamedState(const torch::nn::Module& model) {
  std::map<std::string, at::Tensor> state;
  for (const auto& p : model.named_parameters()) state[p.key()] = p.value();
  for (const auto& b : model.named_buffers()) state[b.key()] = b.value();
  return state;
}

absl::Status SaveCheckpoint(const std::string& dir, const torch::nn::Module& model,
                            const std::map<std::string, at::Tensor>& optimizer,
                            const CheckpointMeta& meta, const Config& config) {
  const fs::path target(dir);
  std::error_code ec;
  fs::create_directories(target.parent_path().empty() ? "." : target.parent_path(), ec);
  const fs::path tmp = target.string() + ".tmp" + std::to_string(std::random_device{}());
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec)) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  }
  YAML::Emitter m;
  m << YAML::BeginMap << YAML::Key << "format" << YAML::Value << "segqat-checkpoint-1" << YAML::Key
    << "epoch" << YAML::Value << meta.epoch << YAML::Key << "step" << YAML::Value << meta.step
    << YAML::Key << "epoch_step" << YAML::Value << meta.epoch_step << YAML::Key << "quantized"
    << YAML::Value << meta.quantized;
  if (meta.miou) m << YAML::Key << "miou" << YAML::Value << *meta.miou;
  m << YAML::EndMap;
  absl::Status st = SaveTensorFile((tmp / kModelFile).string(), NamedState(model));
  if (st.ok() && !optimizer.empty())
    st = SaveTensorFile((tmp / kOptimizerFile).string(), optimizer);
  if (st.ok()) st = WriteFileSynced((tmp / kConfigFile).string(), config.ToYaml());
  if (st.ok()) st = WriteFileSynced((tmp / kMetaFile).string(), std::string(m.c_str()) + "\n");
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    return st;
  }
  SyncDir(tmp);
  const fs::path old = target.string() + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(target)) fs::rename(target, old, ec);
  fs::rename(tmp, target, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("cannot move checkpoint into ", dir, ": ", ec.message()));
  SyncDir(target.parent_path());
  fs::remove_all(old, ec);
  return absl::OkStatus();
}

std::map<std::string, at::Tensor> ConvertedState(const torch::nn::Module& model) {
  std::map<std::string, at::Tensor> state = NamedState(model);
  for (const auto& item : model.named_modules()) {
    auto layer = std::dynamic_pointer_cast<quant::QuantizableLayer>(item.value());
    if (!layer || !layer->converted()) continue;
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (auto it = state.begin(); it != state.end();) {
      const bool own_weight = it->first == prefix + "weight";
      const bool quantizer = it->first.rfind(prefix + "input_quant.", 0) == 0;
      it = own_weight || quantizer ? state.erase(it) : std::next(it);
    }
    const quant::ConvertedWeights& c = *layer->converted();
    state[prefix + "weight_int8"] = c.weight_int8;
    state[prefix + "weight_scale"] = c.weight_scale;
    state[prefix + "input_scale"] = at::full({1}, c.input_scale, at::kFloat);
    // Codes of BN-folded weights (SLIM.fold_bn): the factor that was folded in.
    if (c.bn_scale.defined()) state[prefix + "bn_scale"] = c.bn_scale;
  }
  // Quantized adds (SLIM.quant_add): their three scales instead of the quantizers.
  for (const auto& item : model.named_modules()) {
    auto add = std::dynamic_pointer_cast<quant::QAddImpl>(item.value());
    if (!add || !add->converted()) continue;
    const std::string prefix = item.key() + ".";
    for (auto it = state.begin(); it != state.end();) {
      it = it->first.rfind(prefix, 0) == 0 ? state.erase(it) : std::next(it);
    }
    const quant::ConvertedAdd& c = *add->converted();
    state[prefix + "a_scale"] = at::full({1}, c.a_scale, at::kFloat);
    state[prefix + "b_scale"] = at::full({1}, c.b_scale, at::kFloat);
    state[prefix + "out_scale"] = at::full({1}, c.out_scale, at::kFloat);
  }
  return state;
}

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& dir) {
  const fs::path meta_path = fs::path(dir) / kMetaFile;
  if (!fs::exists(meta_path)) {
    return absl::NotFoundError(absl::StrCat(dir, " is not a segqat checkpoint (no ", kMetaFile,
                                            "; expected a directory written by "
                                            "segqat-worker train)"));
  }
  Checkpoint ck;
  try {
    auto meta_text = ReadWholeFile(meta_path.string());
    if (!meta_text.ok()) return meta_text.status();
    YAML::Node n = YAML::Load(*meta_text);
    if (n["format"].as<std::string>("") != "segqat-checkpoint-1") {
      return absl::InvalidArgumentError(absl::StrCat(meta_path.string(), ": unknown format"));
    }
    ck.meta.epoch = n["epoch"].as<int64_t>();
    ck.meta.step = n["step"].as<int64_t>();
    ck.meta.epoch_step = n["epoch_step"].as<int64_t>(0);
    ck.meta.quantized = n["quantized"].as<bool>();
    if (n["miou"]) ck.meta.miou = n["miou"].as<double>();
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(meta_path.string(), " is corrupt: ", e.what()));
  }
  auto text = ReadWholeFile((fs::path(dir) / kConfigFile).string());
  if (!text.ok()) return text.status();
  auto cfg = Config::FromYamlText(*text, {});
  if (!cfg.ok()) {
    // Not quoted: a checkpoint folder's config.yaml may be any file (a link
    // to one the worker can read), and Config's errors name its keys.
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/", kConfigFile,
                     ": not a config this segqat reads (damaged, or not written by "
                     "segqat-worker)"));
  }
  // Checkpoints from before SLIM.fold_bn quantized the raw conv weights, and
  // those from before SLIM.quant_add trained their residual adds in float.
  try {
    const YAML::Node slim = YAML::Load(*text)["SLIM"];
    if (!slim["fold_bn"]) (void)cfg->Set("SLIM.fold_bn", false);
    if (!slim["quant_add"]) {
      (void)cfg->Set("SLIM.quant_add", false);
      if (ck.meta.quantized) {
        ck.notes.push_back(absl::StrCat(
            dir,
            " predates SLIM.quant_add: its residual adds were trained in float, so they "
            "stay float in the converted model and the exports (the convs that feed them "
            "cannot run int8 to int8); train again, or fine-tune, with SLIM.quant_add True "
            "to quantize them"));
      }
    }
  } catch (const YAML::Exception&) {
  }
  ck.config = *std::move(cfg);
  return ck;
}

absl::Status CheckCheckpointFiles(const std::string& dir) {
  auto ck = ReadCheckpoint(dir);
  if (!ck.ok()) return ck.status();
  for (const char* file : {kModelFile, kOptimizerFile}) {
    const fs::path path = fs::path(dir) / file;
    if (file == kOptimizerFile && !fs::exists(path)) continue;
    auto tensors = LoadTensorFile(path.string());
    if (!tensors.ok()) {
      return absl::DataLossError(absl::StrCat(path.string(), ": ", tensors.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSameArchitecture(const std::string& dir, const Config& checkpoint_cfg,
                                   const Config& cfg) {
  std::vector<std::string> diffs;
  for (const std::string& key : models::ArchitectureKeys()) {
    const std::string have = checkpoint_cfg.Text(key), want = cfg.Text(key);
    if (have != want) diffs.push_back(absl::StrCat(key, " ", have, " (config: ", want, ")"));
  }
  if (diffs.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "checkpoint ", dir, " is another architecture: it has ", absl::StrJoin(diffs, ", ")));
}

absl::Status LoadModelState(const std::string& dir, torch::nn::Module& model) {
  const fs::path file = fs::path(dir) / kModelFile;
  auto tensors = LoadTensorFile(fs::path(file).string());
  if (!tensors.ok()) return tensors.status();
  for (auto& [name, t] : NamedState(model)) {
    auto it = tensors->find(name);
    if (it == tensors->end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.string(), " does not fit this model: it has no ", name,
                       " (a checkpoint of another architecture or quantization setting?)"));
    }
    if (!it->second.sizes().equals(t.sizes())) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.string(), " does not fit this model: ", name, " has shape ",
                       c10::str(it->second.sizes()), ", the model expects ", c10::str(t.sizes())));
    }
    at::Tensor dst = t;
    if (auto st = CopyInto(dst, it->second); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, at::Tensor>> LoadOptimizerState(const std::string& dir) {
  const fs::path file = fs::path(dir) / kOptimizerFile;
  if (!fs::exists(file)) return std::map<std::string, at::Tensor>{};
  return LoadTensorFile(fs::path(file).string());
}

absl::StatusOr<PretrainedReport> LoadPretrained(const std::string& path, torch::nn::Module& model) {
  fs::path file(path);
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return absl::NotFoundError(
        absl::StrCat("TRAIN.PRETRAINED_MODEL_DIR: ", path, " does not exist"));
  }
  if (fs::is_directory(file)) {
    if (fs::exists(file / kModelFile)) {
      file /= kModelFile;
    } else {
      std::vector<fs::path> candidates;
      for (const auto& e : fs::directory_iterator(file, ec)) {
        const std::string ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".pt" || ext == ".pth")) candidates.push_back(e.path());
      }
      if (candidates.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("TRAIN.PRETRAINED_MODEL_DIR: ", path,
                         " holds no segqat checkpoint and not exactly one .pt/.pth state dict"));
      }
      file = candidates[0];
    }
  }
  auto tensors = LoadTensorFile(fs::path(file).string());
  if (!tensors.ok()) return tensors.status();
  PretrainedReport report;
  report.source = file.string();
  std::map<std::string, at::Tensor> state = NamedState(model);
  std::map<std::string, bool> filled;
  for (const auto& [src_name, src] : *tensors) {
    std::string name = src_name;
    if (!state.count(name) && state.count("backbone." + name)) name = "backbone." + name;
    auto it = state.find(name);
    if (it == state.end() || !it->second.sizes().equals(src.sizes())) {
      report.skipped.push_back(src_name);
      continue;
    }
    if (auto st = CopyInto(it->second, src); !st.ok()) return st;
    report.loaded.push_back(name);
    filled[name] = true;
  }
  for (const auto& [name, t] : state) {
    if (!filled.count(name)) report.missing.push_back(name);
  }
  if (report.loaded.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("TRAIN.PRETRAINED_MODEL_DIR: no tensor of ",
                                                   report.source,
                                                   " matches this model by name and shape"));
  }
  return report;
}

}  // namespace segqat
