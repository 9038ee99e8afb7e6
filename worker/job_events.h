// JobEvents: the engine's progress of one job attempt, turned into the API's
// events (steps, evaluations, log lines) numbered 1, 2, ... and kept until
// the server acknowledges them; every line also goes to spdlog and to the
// job's log file (uploaded as the artifact "job.log").
// Thread-safe: the engine's thread adds, the agent's reporting thread takes.
#ifndef SEGQAT_WORKER_JOB_EVENTS_H_
#define SEGQAT_WORKER_JOB_EVENTS_H_

#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/train/progress.h"
#include "segqat/v1/jobs.pb.h"

namespace segqat::agent {

class JobEvents : public ProgressSink {
 public:
  // `on_snapshot` (may be empty) runs on the engine's thread after the log
  // line for each saved snapshot.
  JobEvents(std::string job_id, const std::string& log_path,
            std::function<void(const SnapshotEvent&)> on_snapshot);

  void OnStep(const StepEvent& e) override;
  void OnEval(const EvalEvent& e) override;
  void OnSnapshot(const SnapshotEvent& e) override;
  void OnLog(const std::string& line) override;

  // Events not yet acknowledged, oldest first.
  std::vector<v1::JobEvent> Pending() const;
  // Forgets events with seq <= acked_seq.
  void Acknowledge(int64_t acked_seq);
  void FlushLog();

 private:
  void Add(v1::JobEvent event);
  void Write(const std::string& line);

  const std::string job_id_;
  const std::function<void(const SnapshotEvent&)> on_snapshot_;
  mutable std::mutex mu_;
  std::ofstream log_;
  int64_t next_seq_ = 1;
  std::vector<v1::JobEvent> pending_;
};

}  // namespace segqat::agent

#endif  // SEGQAT_WORKER_JOB_EVENTS_H_
