#include "server/job_progress_sink.h"

#include <spdlog/spdlog.h>

#include <fmt/chrono.h>

#include <algorithm>
#include <ctime>

namespace segqat::server {

JobProgressSink::JobProgressSink(JobStore* store, EventBus* bus, ServerMetrics* metrics,
                                 std::string job_id, v1::Progress start,
                                 const std::string& log_path)
    : store_(store),
      bus_(bus),
      metrics_(metrics),
      job_id_(std::move(job_id)),
      progress_(std::move(start)),
      log_(log_path, std::ios::app) {}

void JobProgressSink::Write(const std::string& line) {
  spdlog::info("[job {}] {}", job_id_, line);
  log_ << fmt::format("{:%Y-%m-%d %H:%M:%S} ", fmt::localtime(std::time(nullptr))) << line
       << std::endl;
}

void JobProgressSink::Append(v1::JobEvent event) {
  auto st = store_->AppendEvent(job_id_, std::move(event));
  if (!st.ok()) spdlog::warn("[job {}] cannot store event: {}", job_id_, st.status().ToString());
  bus_->Notify(job_id_);
}

void JobProgressSink::OnStep(const StepEvent& e) {
  Write(fmt::format("epoch={} step={} lr={:.5f} loss={:.4f} step/sec={:.3f} | ETA {:.0f}s",
                    e.epoch, e.step, e.lr, e.loss, e.steps_per_sec, e.eta_seconds));
  if (metrics_ != nullptr) {
    metrics_->Step(job_id_, e.loss, e.lr, e.images_per_sec,
                   e.steps_per_sec > 0 ? 1.0 / e.steps_per_sec : 0.0);
  }
  progress_.set_epoch(e.epoch);
  progress_.set_step(e.step);
  progress_.set_total_steps(e.total_steps);
  progress_.set_last_loss(e.loss);
  progress_.set_learning_rate(e.lr);
  progress_.set_images_per_second(e.images_per_sec);
  progress_.set_eta_seconds(e.eta_seconds);
  (void)store_->SetProgress(job_id_, progress_);
  v1::JobEvent ev;
  v1::TrainStep* s = ev.mutable_step();
  s->set_epoch(e.epoch);
  s->set_step(e.step);
  s->set_total_steps(e.total_steps);
  s->set_learning_rate(e.lr);
  s->set_loss(e.loss);
  s->set_images_per_second(e.images_per_sec);
  s->set_eta_seconds(e.eta_seconds);
  Append(std::move(ev));
}

void JobProgressSink::OnEval(const EvalEvent& e) {
  const SegMetrics& m = e.metrics;
  Write(fmt::format("[EVAL] epoch={} #image={} acc={:.4f} IoU={:.4f} kappa={:.4f}", e.epoch,
                    m.images, m.acc, m.miou, m.kappa));
  if (metrics_ != nullptr) metrics_->Evaluated(job_id_, m.miou);
  progress_.set_best_miou(std::max(progress_.best_miou(), m.miou));
  (void)store_->SetProgress(job_id_, progress_);
  v1::JobEvent ev;
  v1::Evaluation* out = ev.mutable_evaluation();
  out->set_epoch(e.epoch);
  out->set_miou(m.miou);
  out->set_acc(m.acc);
  out->set_kappa(m.kappa);
  for (double v : m.class_iou) out->add_class_iou(v);
  for (double v : m.class_acc) out->add_class_acc(v);
  out->set_images(m.images);
  Append(std::move(ev));
}

void JobProgressSink::OnSnapshot(const SnapshotEvent& e) {
  OnLog("saved snapshot " + e.name + " (epoch " + std::to_string(e.epoch) + ")");
}

void JobProgressSink::OnLog(const std::string& line) {
  Write(line);
  v1::JobEvent ev;
  ev.mutable_log()->set_level("info");
  ev.mutable_log()->set_text(line);
  Append(std::move(ev));
}

}  // namespace segqat::server
