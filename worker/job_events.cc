#include "worker/job_events.h"

#include <fmt/chrono.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

namespace segqat::agent {

JobEvents::JobEvents(std::string job_id, const std::string& log_path,
                     std::function<void(const SnapshotEvent&)> on_snapshot)
    : job_id_(std::move(job_id)),
      on_snapshot_(std::move(on_snapshot)),
      log_(log_path, std::ios::app) {}

void JobEvents::Write(const std::string& line) {
  spdlog::info("[job {}] {}", job_id_, line);
  std::lock_guard<std::mutex> lock(mu_);
  log_ << fmt::format("{:%Y-%m-%d %H:%M:%S} ", fmt::localtime(std::time(nullptr))) << line << "\n";
}

void JobEvents::FlushLog() {
  std::lock_guard<std::mutex> lock(mu_);
  log_.flush();
}

void JobEvents::Add(v1::JobEvent event) {
  std::lock_guard<std::mutex> lock(mu_);
  event.set_seq(next_seq_++);
  pending_.push_back(std::move(event));
}

std::vector<v1::JobEvent> JobEvents::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

void JobEvents::Acknowledge(int64_t acked_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [&](const v1::JobEvent& e) { return e.seq() <= acked_seq; }),
                 pending_.end());
}

void JobEvents::OnStep(const StepEvent& e) {
  Write(fmt::format("epoch={} step={} lr={:.5f} loss={:.4f} step/sec={:.3f} | ETA {:.0f}s", e.epoch,
                    e.step, e.lr, e.loss, e.steps_per_sec, e.eta_seconds));
  v1::JobEvent ev;
  v1::TrainStep* s = ev.mutable_step();
  s->set_epoch(e.epoch);
  s->set_step(e.step);
  s->set_total_steps(e.total_steps);
  s->set_learning_rate(e.lr);
  s->set_loss(e.loss);
  s->set_images_per_second(e.images_per_sec);
  s->set_eta_seconds(e.eta_seconds);
  s->set_steps_per_second(e.steps_per_sec);
  Add(std::move(ev));
}

void JobEvents::OnEval(const EvalEvent& e) {
  const SegMetrics& m = e.metrics;
  Write(fmt::format("[EVAL] epoch={} #image={} acc={:.4f} IoU={:.4f} kappa={:.4f}", e.epoch,
                    m.images, m.acc, m.miou, m.kappa));
  v1::JobEvent ev;
  v1::Evaluation* out = ev.mutable_evaluation();
  out->set_epoch(e.epoch);
  out->set_miou(m.miou);
  out->set_acc(m.acc);
  out->set_kappa(m.kappa);
  for (double v : m.class_iou) out->add_class_iou(v);
  for (double v : m.class_acc) out->add_class_acc(v);
  out->set_images(m.images);
  Add(std::move(ev));
}

void JobEvents::OnSnapshot(const SnapshotEvent& e) {
  OnLog("saved snapshot " + e.name + " (epoch " + std::to_string(e.epoch) + ")");
  if (on_snapshot_) on_snapshot_(e);
}

void JobEvents::OnLog(const std::string& line) {
  Write(line);
  v1::JobEvent ev;
  ev.mutable_log()->set_level("info");
  ev.mutable_log()->set_text(line);
  Add(std::move(ev));
}

}  // namespace segqat::agent
