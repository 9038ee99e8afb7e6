// Scheduler: the job queue and its workers. Workers, embedded or remote, pull
// work through Synchronize (proto/segqat/v1/workers.proto): each report
// renews the lease on the job the worker runs and delivers its events; an
// idle worker is given the next QUEUED job it can run (priority, then age;
// a job needing GPUs only goes to a worker with as many), with a lease whose
// fencing id is the job's attempt number and whose token, a random secret,
// only that worker is given (the store keeps its sha256 for restarts).
//
// Identity: each report comes with the identity of its caller's
// credentials; a worker id stays bound to the identity that first reported
// under it (until the worker is forgotten), and a worker's credentials may
// read the artifacts of the jobs it holds and of the jobs those name as
// inputs (MayRead), nothing else.
//
// Leases: a worker that stops reporting for `lease_timeout` loses its lease;
// ExpireLeases() then puts the job back in the queue (RUNNING -> QUEUED,
// after a backoff that doubles with each attempt) or ends a cancelled one
// (CANCELLING -> CANCELLED). A report or upload under a stale lease is
// Aborted. Leases are rebuilt from the job store on Start(), so a restarted
// server waits for its workers' next reports instead of dropping their work.
//
// Data-parallel jobs (spec.workers N > 1) are gang-scheduled: idle workers
// are reserved for the job at the head of the queue until N have reported,
// then each gets its rank, with rank 0's address for the rendezvous, and a
// lease of its own. Only rank 0's events, snapshots and outcome count; a
// failed or lost rank sends the whole gang back to the queue (or fails the
// job), and the others are refused at their next report.
//
// The core knows nothing of gRPC (WorkerServiceImpl is the edge). Time comes
// from the injected clock, so tests run without sleeping. Thread-safe.
//
// Defined in three files: scheduler.cc (reports, events, leases, workers),
// placement.cc (which job a worker gets) and attempt_endings.cc (how an
// attempt ends, snapshot retention, cancel).
#ifndef SEGQAT_SERVER_SCHEDULER_H_
#define SEGQAT_SERVER_SCHEDULER_H_

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "segqat/v1/workers.pb.h"
#include "server/artifact_store.h"
#include "server/event_bus.h"
#include "server/job_store.h"
#include "server/lease_table.h"
#include "server/server_metrics.h"

namespace segqat::server {

struct SchedulerOptions {
  std::chrono::milliseconds report_interval{1000};  // asked of workers
  std::chrono::milliseconds lease_timeout{5000};    // about three missed reports
  std::chrono::milliseconds max_backoff{30000};     // before a requeued job runs again
  NowMicros now = SystemClock();
  bool expiry_thread = true;  // tests call ExpireLeases() themselves
  // Uploaded snapshots (snapshots/N) a running job keeps, newest first; an
  // ended job keeps none, only its outputs.
  int keep_snapshots = 2;
  // A job whose worker is lost (crash, OOM kill, expired lease) this many
  // times ends FAILED rather than running again (--max-attempts).
  int max_lost_attempts = 3;
  // Ended jobs older than this (by end time) are deleted, rows and files
  // (--retention); zero keeps them.
  std::chrono::seconds retention{0};
};

class Scheduler {
 public:
  Scheduler(JobStore* store, ArtifactStore* artifacts, EventBus* bus, SchedulerOptions options);
  ~Scheduler();  // Shutdown()

  // Re-arms the leases of jobs a previous process left RUNNING or CANCELLING
  // (their workers have one lease timeout to report) and starts expiring.
  absl::Status Start();

  // One worker report and the server's answer. FailedPrecondition for another
  // protocol version; InvalidArgument for a malformed report; Aborted when
  // the report's lease is stale (the worker must drop that job).
  // PermissionDenied when `identity` (the caller's credentials; "" when
  // tokens are off) is not the one the worker id is bound to.
  absl::StatusOr<v1::SynchronizeResponse> Synchronize(const v1::SynchronizeRequest& request,
                                                      const std::string& identity = "");

  // Aborted unless worker_id holds `lease` (its attempt and its token).
  absl::Status CheckLease(const std::string& worker_id, const v1::Lease& lease);
  // Whether a worker with credentials `identity` may read job `job_id`'s
  // artifacts: a job one of its workers holds a lease on, or one that such
  // a job's spec names as an input (a value "jobs/ID/...").
  bool MayRead(const std::string& identity, const std::string& job_id);
  // Deletes the ended jobs past options.retention (rows, events, artifacts);
  // returns how many. The expiry thread calls it about once a minute.
  int DeleteExpiredJobs();
  // Removes a running job's uploaded snapshots but the newest
  // keep_snapshots (and the one it would resume from), or, once it has
  // ended, all of them.
  void KeepNewestSnapshots(const std::string& job_id);
  // Lists an uploaded artifact on its job and tells its watchers. An error
  // when it cannot be listed (the upload then fails, and the worker sends it
  // again); the watchers' event is best effort (logged when not recorded).
  // `completes_snapshot` (job::SnapshotHolds of the artifact, checked by the
  // caller): the snapshot folder this file completes, which becomes the
  // job's resume point (Job.snapshot) before the older ones are pruned.
  absl::Status ArtifactUploaded(const std::string& job_id, const v1::Artifact& artifact,
                                const std::string& completes_snapshot = "");

  // QUEUED: cancelled at once. RUNNING: CANCELLING now; the worker is told
  // to stop in its next answer and the job is CANCELLED when it reports that
  // it stopped (its snapshot kept as the artifact "interrupted").
  // FailedPrecondition for a job that has ended.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);

  // Requeues (or ends, if cancelled) the jobs of leases whose time is up.
  void ExpireLeases();
  // Stops placing jobs and expiring leases. Idempotent.
  void Shutdown();

  // Every worker seen, with its state ("idle", "busy", or "lost" once it
  // missed its lease timeout), newest report first.
  std::vector<v1::Worker> Workers();

  // Optional; set before Start().
  void SetMetrics(ServerMetrics* metrics) { metrics_ = metrics; }

 private:
  struct WorkerEntry {
    v1::Worker worker;
    std::string identity;  // of the credentials it reports with
    int64_t last_report_us = 0;
    int gpus = 0;
    std::string rendezvous;  // HOST:PORT it offers as a rank 0
  };

  // The helpers below run with mu_ held.
  absl::Status ApplyEvents(const std::string& job_id, Lease* lease,
                           const google::protobuf::RepeatedPtrField<v1::JobEvent>& events);
  // Records the reported end and releases the attempt. Unavailable when the
  // store cannot record it (a full disk): the attempt and its lease stay, and
  // the worker reports again until it can, so the job never stays RUNNING
  // with nobody behind it.
  absl::Status Finish(const std::string& job_id, const v1::WorkerReport::Finished& report,
                      const std::string& worker_id);
  // Ends the job's attempt: releases every rank's lease and pending
  // assignment. Then requeues, or (when cancelling) cancels.
  void LoseAttempt(const std::string& job_id, const std::string& reason, bool backoff);
  void ReleaseAttempt(const std::string& job_id);
  void Requeue(const std::string& job_id, const std::string& reason);
  bool Assign(WorkerEntry* worker, v1::SynchronizeResponse* response);
  // Places `job` on `worker` if it can run it: true when placed, false when
  // the worker is reserved for its gang, nullopt to try the next job.
  std::optional<bool> TryAssign(const v1::Job& job, WorkerEntry* worker,
                                v1::SynchronizeResponse* response);
  // Places `job` on its gang once `worker` completes it; false while forming.
  bool AssignGang(const v1::Job& job, WorkerEntry* worker, v1::SynchronizeResponse* response);
  bool Alive(const std::string& worker_id) const;
  // Grants rank `rank` of the running `job`'s attempt to `worker_id` under a
  // new token, written into `out` (job, fencing, rank, token), with the jobs
  // it reads as inputs; keeps the token's digest in the store for rank 0.
  void GrantLease(const v1::Job& job, int rank, const std::string& worker_id, v1::Lease* out);
  void Refused(const std::string& reason);
  void ExpireLocked();

  JobStore* store_;
  ArtifactStore* artifacts_;
  EventBus* bus_;
  SchedulerOptions options_;
  ServerMetrics* metrics_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  bool shutting_down_ = false;
  LeaseTable leases_;
  std::map<std::string, WorkerEntry> workers_;             // by worker id
  std::map<std::string, int64_t> not_before_us_;           // requeued jobs' backoff
  std::map<std::string, std::vector<std::string>> gangs_;  // forming: job id -> workers
  std::map<std::string, v1::RunAssignment> pending_;       // placed ranks, by worker id
  // Jobs whose lost attempt the store could not record (requeue or cancel),
  // with the reason: retried on every expiry tick, so none stays RUNNING.
  std::map<std::string, std::string> unrecorded_;
  std::thread expiry_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_SCHEDULER_H_
