// What training and evaluation report while they run. The command line prints
// these; the service turns them into job events. Callbacks run on the
// training thread and should return quickly.
#ifndef SEGQAT_ENGINE_TRAIN_PROGRESS_H_
#define SEGQAT_ENGINE_TRAIN_PROGRESS_H_

#include <cstdint>
#include <string>

#include "engine/train/metrics.h"

namespace segqat {

struct StepEvent {
  int64_t epoch = 0;  // 1-based, as PaddleSeg counts
  int64_t step = 0;   // global step, 1-based
  int64_t total_steps = 0;
  double lr = 0;
  double loss = 0;  // mean over the steps since the last event
  double steps_per_sec = 0;
  double images_per_sec = 0;
  double eta_seconds = 0;
};

struct EvalEvent {
  int64_t epoch = 0;
  SegMetrics metrics;
};

struct SnapshotEvent {
  int64_t epoch = 0;
  std::string name;  // "<epoch>", "best_model", "final" or "interrupted"
  std::string path;
};

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void OnStep(const StepEvent&) {}
  virtual void OnEval(const EvalEvent&) {}
  virtual void OnSnapshot(const SnapshotEvent&) {}
  virtual void OnLog(const std::string& /*line*/) {}
};

// Prints PaddleSeg-style lines through spdlog.
class LogProgressSink : public ProgressSink {
 public:
  void OnStep(const StepEvent& e) override;
  void OnEval(const EvalEvent& e) override;
  void OnSnapshot(const SnapshotEvent& e) override;
  void OnLog(const std::string& line) override;
};

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_PROGRESS_H_
