#include "engine/train/trainer.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/data/loader.h"
#include "engine/models/deeplab.h"
#include "engine/quant/quant_aware.h"
#include "engine/train/checkpoint.h"
#include "engine/train/dataset.h"
#include "engine/train/evaluator.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/sgd.h"
#include "engine/train/sync_batch_norm.h"
#include "job/artifact_layout.h"

namespace segqat {

std::string BatchNormMomentumWarning(const Config& cfg, int64_t total_steps) {
  const double momentum = cfg.Float("MODEL.BN_MOMENTUM");
  const double window = 1.0 / std::max(1e-6, 1.0 - momentum);
  if (static_cast<double>(total_steps) >= 5 * window) return "";
  return absl::StrCat(
      "warning: MODEL.BN_MOMENTUM ", momentum, " averages batch-norm statistics over about ",
      static_cast<int64_t>(std::lround(window)), " steps and this training from scratch has ",
      total_steps,
      ": evaluation would use the statistics of earlier weights (at 0.99 over 240 "
      "steps both segqat and PyTorch evaluate near 0 mIoU: bench/train_parity.py); set "
      "MODEL.BN_MOMENTUM 0.9 (PyTorch's default momentum 0.1) for short schedules");
}
namespace {

using Clock = std::chrono::steady_clock;

class Run {
 public:
  Run(const Config& cfg, const TrainOptions& options, ProgressSink* sink)
      : cfg_(cfg), opt_(options), sink_(sink), comm_(options.collectives) {
    if (comm_ == nullptr) {
      local_ = LocalCollectives();
      comm_ = local_.get();
    }
    // Only rank 0 reports.
    if (comm_->rank() != 0) sink_ = &silent_;
  }

  absl::StatusOr<TrainResult> Execute();
  // Why a collective inside the forward or backward pass failed (the pass
  // then throws); OK otherwise.
  const absl::Status& collective_error() const { return collective_error_; }

 private:
  absl::Status Setup();
  absl::Status Restore(const std::string& dir);
  absl::Status TrainEpoch(int64_t epoch, int64_t skip_steps);
  absl::Status Snapshot(const std::string& name, int64_t epoch, int64_t epoch_step,
                        std::optional<double> miou);
  absl::Status EndOfEpoch(int64_t epoch);
  bool StopRequested() const { return opt_.stop != nullptr && opt_.stop->load(); }
  bool Leader() const { return comm_->rank() == 0; }
  // Floating-point buffers (BN statistics, quantizer ranges) averaged across
  // ranks, so every rank holds, and rank 0 saves, the same model.
  absl::Status SyncBuffers();
  uint64_t Fingerprint();
  std::string SaveDir(const std::string& name) const {
    return (std::filesystem::path(cfg_.Str("TRAIN.MODEL_SAVE_DIR")) / name).string();
  }

  const Config& cfg_;
  const TrainOptions& opt_;
  ProgressSink* sink_;
  ProgressSink silent_;
  Collectives* comm_;
  std::unique_ptr<Collectives> local_;
  models::DeepLabV3Plus model_{nullptr};
  std::unique_ptr<MomentumSGD> sgd_;
  std::vector<data::ListEntry> train_, val_;
  int64_t steps_per_epoch_ = 0, total_steps_ = 0, global_step_ = 0;
  int64_t first_epoch_ = 1, skip_steps_ = 0;
  TrainResult result_;
  absl::Status collective_error_;
};

absl::Status Run::Setup() {
  torch::manual_seed(static_cast<uint64_t>(cfg_.Int("TRAIN.SEED")));
  model_ = models::DeepLabV3Plus(models::DeepLabOptions::FromConfig(cfg_));
  if (opt_.quant) {
    auto report = quant::QuantAware(*model_, quant::QuantConfig::FromConfig(cfg_));
    if (!report.ok()) return report.status();
    sink_->OnLog(absl::StrCat(
        "quant_aware: ", report->quantized.size(), " layers quantized",
        report->skipped.empty() ? "" : ", kept float: ", absl::StrJoin(report->skipped, ", ")));
    if (!report->adds.empty()) {
      sink_->OnLog(absl::StrCat("quant_aware: ", report->adds.size(),
                                " residual adds quantized (SLIM.quant_add)"));
    }
  }
  auto train = SplitEntries(cfg_, Split::kTrain, opt_.lists);
  if (!train.ok()) return train.status();
  train_ = *std::move(train);
  if (opt_.do_eval) {
    auto val = SplitEntries(cfg_, Split::kVal, opt_.lists);
    if (!val.ok()) return val.status();
    val_ = *std::move(val);
  }
  const int64_t batch = cfg_.Int("BATCH_SIZE");
  if (batch % comm_->world_size() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("BATCH_SIZE: ", batch, " does not split into ",
                                                   comm_->world_size(), " equal rank batches"));
  }
  steps_per_epoch_ = static_cast<int64_t>(train_.size()) / batch;
  if (steps_per_epoch_ == 0) {
    return absl::InvalidArgumentError(absl::StrCat("BATCH_SIZE: ", batch, " is larger than the ",
                                                   train_.size(), " training images"));
  }
  total_steps_ = steps_per_epoch_ * cfg_.Int("SOLVER.NUM_EPOCHS");
  first_epoch_ = cfg_.Int("SOLVER.BEGIN_EPOCH");

  const std::string& resume = cfg_.Str("TRAIN.RESUME_MODEL_DIR");
  const std::string& pretrained = cfg_.Str("TRAIN.PRETRAINED_MODEL_DIR");
  if (!resume.empty()) {
    if (auto st = Restore(resume); !st.ok()) return st;
  } else if (!pretrained.empty()) {
    auto report = LoadPretrained(pretrained, *model_);
    if (!report.ok()) return report.status();
    sink_->OnLog(absl::StrCat("load pretrained model from ", report->source, ": ",
                              report->loaded.size(), " tensors loaded, ", report->skipped.size(),
                              " skipped, ", report->missing.size(), " left initialised"));
  } else if (std::string warning = BatchNormMomentumWarning(cfg_, total_steps_); !warning.empty()) {
    sink_->OnLog(warning);
  }
  model_->to(opt_.device);
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& p : model_->named_parameters()) params.emplace_back(p.key(), p.value());
  auto buffers = sgd_ ? sgd_->momentum_buffers() : std::map<std::string, at::Tensor>{};
  sgd_ = std::make_unique<MomentumSGD>(std::move(params), cfg_.Float("SOLVER.MOMENTUM"),
                                       cfg_.Float("SOLVER.WEIGHT_DECAY"));
  if (auto st = sgd_->LoadMomentumBuffers(buffers); !st.ok()) return st;
  if (comm_->world_size() > 1) {
    // Every rank starts from rank 0's weights, buffers and position.
    std::vector<at::Tensor> state;
    for (const auto& p : model_->named_parameters()) state.push_back(p.value().detach());
    for (const auto& b : model_->named_buffers()) state.push_back(b.value());
    at::Tensor position = at::tensor({first_epoch_, global_step_, skip_steps_}, at::kLong);
    state.push_back(position);
    if (auto st = BroadcastAll(*comm_, state, 0); !st.ok()) return st;
    first_epoch_ = position[0].item<int64_t>();
    global_step_ = position[1].item<int64_t>();
    skip_steps_ = position[2].item<int64_t>();
    const bool sync_bn = cfg_.Bool("TRAIN.SYNC_BATCH_NORM");
    const int layers =
        sync_bn ? models::SetWorldSum(*model_, CollectiveWorldSum(*comm_, &collective_error_)) : 0;
    sink_->OnLog(absl::StrCat(
        "data-parallel: ", comm_->world_size(), " ranks, ", batch / comm_->world_size(),
        " images each per step; BN statistics ",
        sync_bn ? absl::StrCat("of the global batch in ", layers, " layers (TRAIN.SYNC_BATCH_NORM)")
                : "per rank, averaged before each snapshot"));
  }
  return absl::OkStatus();
}

absl::Status Run::SyncBuffers() {
  if (comm_->world_size() == 1) return absl::OkStatus();
  std::vector<at::Tensor> buffers;
  for (const auto& b : model_->named_buffers()) {
    if (b.value().is_floating_point()) buffers.push_back(b.value());
  }
  return AllReduceMean(*comm_, buffers);
}

absl::Status Run::Restore(const std::string& dir) {
  auto prefixed = [&](const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat("TRAIN.RESUME_MODEL_DIR: ", st.message()));
  };
  auto ck = ReadCheckpoint(dir);
  if (!ck.ok()) return prefixed(ck.status());
  if (auto st = CheckSameArchitecture(dir, ck->config, cfg_); !st.ok()) return prefixed(st);
  if (ck->meta.quantized != opt_.quant) {
    return absl::InvalidArgumentError(absl::StrCat("TRAIN.RESUME_MODEL_DIR: ", dir,
                                                   ck->meta.quantized
                                                       ? " is a quantized checkpoint; add --quant"
                                                       : " is a float checkpoint; drop --quant"));
  }
  if (auto st = LoadModelState(dir, *model_); !st.ok()) return prefixed(st);
  auto momentum = LoadOptimizerState(dir);
  if (!momentum.ok()) return prefixed(momentum.status());
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& p : model_->named_parameters()) params.emplace_back(p.key(), p.value());
  sgd_ = std::make_unique<MomentumSGD>(std::move(params), 0, 0);
  if (auto st = sgd_->LoadMomentumBuffers(*momentum); !st.ok()) return prefixed(st);
  first_epoch_ = ck->meta.epoch + 1;
  global_step_ = ck->meta.step;
  skip_steps_ = ck->meta.epoch_step;
  // Keep the best mIoU seen before the restart.
  auto best = ReadCheckpoint(SaveDir(job::kBestModel));
  if (best.ok() && best->meta.miou) result_.best_miou = best->meta.miou;
  sink_->OnLog(
      absl::StrCat("resume from ", dir, ": epoch ", first_epoch_, ", step ", global_step_));
  return absl::OkStatus();
}

absl::Status Run::TrainEpoch(int64_t epoch, int64_t skip_steps) {
  model_->train();
  data::LoaderOptions lo = LoaderFromConfig(cfg_, data::LoaderMode::kTrain);
  lo.batch_size /= comm_->world_size();
  lo.shard = comm_->rank();
  lo.num_shards = comm_->world_size();
  data::BatchLoader loader(train_, lo, static_cast<int>(epoch));
  const int ignore = static_cast<int>(cfg_.Int("DATASET.IGNORE_INDEX"));
  const int log_steps = std::max(1, opt_.log_steps);
  double loss_sum = 0;
  int64_t loss_count = 0, epoch_step = 0, images = 0;
  auto window_start = Clock::now();
  const auto run_start = Clock::now();
  const int64_t start_step = global_step_;
  while (true) {
    auto batch = loader.Next();
    if (!batch.ok()) return batch.status();
    if (!batch->has_value()) break;
    if (epoch_step < skip_steps) {
      ++epoch_step;
      continue;
    }
    auto stop = AnyRank(*comm_, StopRequested());  // agreed, so no rank waits alone
    if (!stop.ok()) return stop.status();
    if (*stop) {
      if (auto st = SyncBuffers(); !st.ok()) return st;
      if (auto st = Snapshot(job::kInterrupted, epoch - 1, epoch_step, std::nullopt); !st.ok())
        return st;
      result_.interrupted = true;
      return absl::OkStatus();
    }
    const data::Batch& b = **batch;
    const double lr = LearningRate(cfg_, global_step_, steps_per_epoch_, total_steps_);
    at::Tensor labels = BatchLabels(b).to(opt_.device);
    at::Tensor logits = model_->forward(BatchImages(b).to(opt_.device));
    at::Tensor loss;
    if (comm_->world_size() == 1) {
      loss = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, ignore);
    } else {
      // The mean over the global batch's labelled pixels, as one process
      // would take it: ranks' slices hold different numbers of ignored
      // pixels. Scaled by the world size, as gradients are averaged.
      at::Tensor counted = (labels != ignore).sum().to(at::kDouble).reshape({1});
      if (auto st = comm_->AllReduceSum(counted); !st.ok()) return st;
      const double n = std::max(1.0, counted.item<double>());
      loss = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum, ignore) *
             (comm_->world_size() / n);
    }
    sgd_->ZeroGrad();
    loss.backward();
    double loss_value = loss.item<double>();
    if (comm_->world_size() > 1) {
      std::vector<at::Tensor> grads;
      for (const auto& p : model_->parameters()) grads.push_back(p.grad());
      at::Tensor mean_loss = at::full({1}, loss_value, at::kDouble);
      if (auto st = AllReduceMean(*comm_, grads); !st.ok()) return st;
      if (auto st = AllReduceMean(*comm_, {mean_loss}); !st.ok()) return st;
      loss_value = mean_loss.item<double>();
    }
    sgd_->Step(lr);
    if (!std::isfinite(loss_value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SOLVER.LR: loss became ", loss_value, " at step ", global_step_ + 1,
                       "; lower the learning rate (", cfg_.Float("SOLVER.LR"), ")"));
    }
    ++global_step_;
    ++epoch_step;
    loss_sum += loss_value;
    ++loss_count;
    images += b.n;
    if (global_step_ % log_steps == 0 || global_step_ == total_steps_) {
      const auto now = Clock::now();
      const double window = std::chrono::duration<double>(now - window_start).count();
      const double elapsed = std::chrono::duration<double>(now - run_start).count();
      StepEvent e;
      e.epoch = epoch;
      e.step = global_step_;
      e.total_steps = total_steps_;
      e.lr = lr;
      e.loss = loss_sum / loss_count;
      e.steps_per_sec = window > 0 ? loss_count / window : 0;
      e.images_per_sec = window > 0 ? images / window : 0;
      const double per_step = elapsed / std::max<int64_t>(1, global_step_ - start_step);
      e.eta_seconds = per_step * (total_steps_ - global_step_);
      sink_->OnStep(e);
      loss_sum = 0;
      loss_count = images = 0;
      window_start = now;
    }
  }
  return absl::OkStatus();
}

absl::Status Run::Snapshot(const std::string& name, int64_t epoch, int64_t epoch_step,
                           std::optional<double> miou) {
  if (!Leader()) return absl::OkStatus();
  CheckpointMeta meta;
  meta.epoch = epoch;
  meta.step = global_step_;
  meta.epoch_step = epoch_step;
  meta.quantized = opt_.quant;
  meta.miou = miou;
  const std::string dir = SaveDir(name);
  // The checkpoint carries the config it was made with, so resume and eval
  // rebuild the same model; RESUME/PRETRAINED are this run's, not the model's.
  Config saved = cfg_;
  (void)saved.Set("TRAIN.RESUME_MODEL_DIR", std::string());
  if (auto st = SaveCheckpoint(dir, *model_, sgd_->momentum_buffers(), meta, saved); !st.ok()) {
    return st;
  }
  result_.final_dir = dir;
  sink_->OnSnapshot({epoch, name, dir});
  return absl::OkStatus();
}

absl::Status Run::EndOfEpoch(int64_t epoch) {
  const int64_t last = cfg_.Int("SOLVER.NUM_EPOCHS");
  if (epoch % cfg_.Int("TRAIN.SNAPSHOT_EPOCH") != 0 && epoch != last) return absl::OkStatus();
  if (auto st = SyncBuffers(); !st.ok()) return st;
  std::optional<double> miou;
  if (opt_.do_eval && Leader()) {
    auto metrics = Evaluate(model_, cfg_, val_, opt_.device, opt_.stop);
    if (!metrics.ok()) {
      if (absl::IsCancelled(metrics.status())) return absl::OkStatus();
      return metrics.status();
    }
    miou = metrics->miou;
    result_.last_miou = miou;
    sink_->OnEval({epoch, *metrics});
  }
  if (auto st = Snapshot(std::to_string(epoch), epoch, 0, miou); !st.ok()) return st;
  if (miou && (!result_.best_miou || *miou > *result_.best_miou)) {
    result_.best_miou = miou;
    if (auto st = Snapshot(job::kBestModel, epoch, 0, miou); !st.ok()) return st;
    sink_->OnLog(absl::StrCat("best_model: mIoU ", *miou, " at epoch ", epoch));
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainResult> Run::Execute() {
  if (auto st = Setup(); !st.ok()) return st;
  const int64_t last = cfg_.Int("SOLVER.NUM_EPOCHS");
  for (int64_t epoch = first_epoch_; epoch <= last; ++epoch) {
    if (auto st = TrainEpoch(epoch, epoch == first_epoch_ ? skip_steps_ : 0); !st.ok()) return st;
    if (result_.interrupted) break;
    result_.epochs_completed = epoch;
    if (auto st = EndOfEpoch(epoch); !st.ok()) return st;
  }
  if (!result_.interrupted) {
    if (auto st = Snapshot(job::kFinal, last, 0, result_.last_miou); !st.ok()) return st;
  }
  result_.steps_completed = global_step_;
  if (comm_->world_size() > 1) {
    // Every rank holds the same model; this line lets anyone check.
    spdlog::info("rank {} of {}: weights fingerprint {:016x}", comm_->rank(), comm_->world_size(),
                 Fingerprint());
  }
  return result_;
}

uint64_t Run::Fingerprint() {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over every parameter's and buffer's bytes
  auto add = [&](const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  for (const auto& p : model_->named_parameters()) add(p.value());
  for (const auto& b : model_->named_buffers()) add(b.value());
  return h;
}

}  // namespace

absl::StatusOr<TrainResult> Train(const Config& cfg, const TrainOptions& options,
                                  ProgressSink* sink) {
  LogProgressSink log_sink;
  Run run(cfg, options, sink != nullptr ? sink : &log_sink);
  try {
    return run.Execute();
  } catch (const c10::Error& e) {
    if (!run.collective_error().ok()) return run.collective_error();  // a rank is gone
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
}

}  // namespace segqat
