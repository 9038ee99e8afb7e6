// Scheduler: runs queued jobs on this server's embedded workers, one job per
// worker (one worker per device), by priority then age. A worker takes a job
// (QUEUED -> RUNNING), runs it on the engine through the worker runtime,
// streams its progress into the JobStore as events, publishes its outputs to
// the ArtifactStore and records the end state.
//
// Recovery: Start() puts jobs left RUNNING or CANCELLING by a previous
// process back in the queue; they resume from their last snapshot (the
// runtime finds it in the job's work directory). Shutdown() interrupts
// running jobs, which save a snapshot and go back to QUEUED.
// Thread-safe.
#ifndef SEGQAT_SERVER_SCHEDULER_H_
#define SEGQAT_SERVER_SCHEDULER_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/artifact_store.h"
#include "server/event_bus.h"
#include "server/job_store.h"
#include "server/server_metrics.h"
#include "worker/runtime/job_runner.h"

namespace segqat::server {

struct SchedulerOptions {
  int local_workers = 1;         // 0: none (jobs wait for a remote worker)
  bool gpu = false;              // workers are GPUs (cuda:N) instead of the CPU
  std::string work_root;         // per-job working directories live here
};

struct WorkerStatus {
  std::string name, device, state, job;
};

class Scheduler {
 public:
  Scheduler(JobStore* store, ArtifactStore* artifacts, EventBus* bus, SchedulerOptions options);
  ~Scheduler();  // Shutdown()

  // Requeues jobs a previous process left running and starts the workers.
  absl::Status Start();
  // A job was queued: wake an idle worker.
  void Wake();
  // QUEUED: cancelled at once. RUNNING: CANCELLING now, CANCELLED once the
  // worker stops it between steps (its last snapshot is kept as artifacts).
  // FailedPrecondition for a job that has ended.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);
  // Stops taking jobs, interrupts running ones (they snapshot and requeue)
  // and joins the workers. Idempotent.
  void Shutdown();
  std::vector<WorkerStatus> Workers();

  // Optional; set before Start().
  void SetMetrics(ServerMetrics* metrics) { metrics_ = metrics; }

  // The resolver for "jobs/ID/NAME" references in job configs.
  runtime::PathResolver Resolver() const;

 private:
  struct Slot {
    WorkerStatus status;
    std::thread thread;
    std::string job;                   // running job id, guarded by mu_
    std::atomic<bool> stop{false};     // interrupt the running job
    bool cancel = false;               // ... because it was cancelled (mu_)
  };
  void WorkerLoop(Slot* slot);
  bool TakeJob(Slot* slot, v1::Job* job);
  void RunOne(Slot* slot, const v1::Job& job);
  void Finish(Slot* slot, const v1::Job& job, const absl::Status& status, bool interrupted,
              const std::vector<std::string>& outputs, const std::string& work_dir);
  void Publish(const std::string& job_id, const std::string& source, const std::string& name);

  JobStore* store_;
  ArtifactStore* artifacts_;
  EventBus* bus_;
  SchedulerOptions options_;
  ServerMetrics* metrics_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool shutting_down_ = false;
  bool wake_ = false;
  std::vector<std::unique_ptr<Slot>> slots_;
};

// Converts a job's spec to the runtime's request.
runtime::JobRequest ToJobRequest(const v1::JobSpec& spec);

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_SCHEDULER_H_
