#include "engine/train/progress.h"

#include <spdlog/spdlog.h>

#include <string>

namespace segqat {
namespace {

std::string Clock(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

}  // namespace

void LogProgressSink::OnStep(const StepEvent& e) {
  spdlog::info("epoch={} step={} lr={:.5f} loss={:.4f} step/sec={:.3f} | ETA {}", e.epoch, e.step,
               e.lr, e.loss, e.steps_per_sec, Clock(e.eta_seconds));
}

void LogProgressSink::OnEval(const EvalEvent& e) {
  const SegMetrics& m = e.metrics;
  spdlog::info("[EVAL] #image={} acc={:.4f} IoU={:.4f}", m.images, m.acc, m.miou);
  std::string iou, acc;
  for (double v : m.class_iou) iou += fmt::format(" {:.4f}", v);
  for (double v : m.class_acc) acc += fmt::format(" {:.4f}", v);
  spdlog::info("[EVAL] Category IoU:{}", iou);
  spdlog::info("[EVAL] Category Acc:{}", acc);
  spdlog::info("[EVAL] Kappa: {:.4f}", m.kappa);
}

void LogProgressSink::OnSnapshot(const SnapshotEvent& e) {
  spdlog::info("Save model checkpoint to {}", e.path);
}

void LogProgressSink::OnLog(const std::string& line) { spdlog::info("{}", line); }

}  // namespace segqat
