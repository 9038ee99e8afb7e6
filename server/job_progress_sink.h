// JobProgressSink: the engine's progress of one job, stored as job events
// (and the job's progress summary) and announced on the EventBus. Every line
// also goes to spdlog with the job id, and to the job's log file (published
// as the artifact "job.log" when the job ends).
#ifndef SEGQAT_SERVER_JOB_PROGRESS_SINK_H_
#define SEGQAT_SERVER_JOB_PROGRESS_SINK_H_

#include <fstream>
#include <string>

#include "server/event_bus.h"
#include "server/job_store.h"
#include "server/server_metrics.h"
#include "worker/train/progress.h"

namespace segqat::server {

class JobProgressSink : public ProgressSink {
 public:
  // metrics may be null.
  JobProgressSink(JobStore* store, EventBus* bus, ServerMetrics* metrics, std::string job_id,
                  v1::Progress start, const std::string& log_path);
  void OnStep(const StepEvent& e) override;
  void OnEval(const EvalEvent& e) override;
  void OnSnapshot(const SnapshotEvent& e) override;
  void OnLog(const std::string& line) override;

 private:
  void Append(v1::JobEvent event);
  void Write(const std::string& line);
  JobStore* store_;
  EventBus* bus_;
  ServerMetrics* metrics_;
  std::string job_id_;
  v1::Progress progress_;
  std::ofstream log_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_JOB_PROGRESS_SINK_H_
