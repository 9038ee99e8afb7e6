// JobStore: every job and every job event, persisted in one SQLite file (WAL
// mode, synchronous=FULL) before a call returns, so a restarted server finds
// exactly what it acknowledged.
//
// Thread safety: all methods are safe to call from any thread (one
// connection behind a mutex). Errors: NotFound for an unknown job id,
// FailedPrecondition for an illegal state transition, InvalidArgument for a
// bad page token, Internal for SQLite failures (the message has SQLite's).
#ifndef SEGQAT_SERVER_JOB_STORE_H_
#define SEGQAT_SERVER_JOB_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "segqat/v1/jobs.pb.h"
#include "server/event_tail.h"

struct sqlite3;

namespace segqat::server {

// Microseconds since the Unix epoch; injected so tests run on a fake clock.
using NowMicros = std::function<int64_t()>;
NowMicros SystemClock();

class JobStore {
 public:
  // Opens (creating if needed) the database at `path`. Fails, with `path` in
  // the message, when the file cannot be opened, is not a SQLite database, or
  // was written by a newer schema version.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path, NowMicros now);
  ~JobStore();

  // Creates a QUEUED job with a new id ("jobs/<id>", id a short unique token)
  // and appends its first event (StateChange QUEUED). With a non-empty
  // request_id already used, creates nothing and returns the earlier job and
  // false.
  absl::StatusOr<std::pair<v1::Job, bool>> Create(const v1::CreateJobRequest& request,
                                                  const std::string& owner = "");

  // `id` is the bare id (not "jobs/<id>").
  absl::StatusOr<v1::Job> Get(const std::string& id);

  // Newest first; filters as ListJobsRequest documents; page_size already
  // validated by the caller (1..500). A page also ends before its jobs pass
  // max_bytes (serialized; a page holds at least one job), so large jobs
  // never push a response past the message limit. A token from another
  // query is InvalidArgument.
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request, int page_size,
                                            int64_t max_bytes = int64_t{2} << 20);

  // Moves the job to `to` if legal (job_state.h), records start_time when
  // entering RUNNING (and increments attempt), end_time when entering a final
  // state, `reason` as the error when entering FAILED, and appends a
  // StateChange event, all in one transaction.
  absl::StatusOr<v1::Job> Transition(const std::string& id, v1::JobState to,
                                     const std::string& reason);

  // Replaces progress / adds an artifact (same name: replaced) / sets worker
  // / sets the newest uploaded snapshot (Job.snapshot).
  absl::Status SetProgress(const std::string& id, const v1::Progress& progress);
  absl::Status AddArtifact(const std::string& id, const v1::Artifact& artifact);
  absl::Status SetWorker(const std::string& id, const std::string& worker);
  absl::Status SetSnapshot(const std::string& id, const std::string& snapshot);
  // Counts one more lost attempt (Job.lost_attempts); returns the job.
  absl::StatusOr<v1::Job> AddLostAttempt(const std::string& id);
  // The sha256 of the job's current lease token ("" when none was stored):
  // kept so a restarted server re-arms the lease for its holder only.
  // A new token starts a new attempt: its acknowledged worker seq is 0.
  absl::Status SetLeaseToken(const std::string& id, const std::string& token_sha256);
  absl::StatusOr<std::string> LeaseToken(const std::string& id);
  // The newest worker_seq among the events stored for the attempt holding
  // the lease (AppendEvent writes it with each worker event); 0 when none.
  absl::StatusOr<int64_t> AckedWorkerSeq(const std::string& id);
  // Unlists the job's artifacts named `prefix` or under `prefix/`.
  absl::Status RemoveArtifacts(const std::string& id, const std::string& prefix);
  // Removes the job and its events. FailedPrecondition unless it has ended.
  absl::Status Delete(const std::string& id);

  // Appends an event with seq = last seq + 1 and the current time; returns it
  // as stored. A worker's event (worker_seq > 0) also becomes the lease's
  // AckedWorkerSeq, in the same transaction.
  absl::StatusOr<v1::JobEvent> AppendEvent(const std::string& id, v1::JobEvent event);
  // Events with seq > after_seq in order, at most `limit` (none if limit <= 0).
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(const std::string& id, int64_t after_seq,
                                                       int limit);

  // Jobs in `state`, in scheduling order: priority descending, then oldest first.
  absl::StatusOr<std::vector<v1::Job>> ListByState(v1::JobState state);
  // The ids of ListByState's jobs that need at most `max_gpus` CUDA devices,
  // `limit` from `offset` on: the queue walked without reading any job (an
  // index scan), skipping what the worker asking could not run.
  absl::StatusOr<std::vector<std::string>> IdsByState(v1::JobState state, int max_gpus, int limit,
                                                      int64_t offset);
  // How many jobs are in `state` (and, given, belong to `owner`); an index
  // count, however long the queue.
  absl::StatusOr<int64_t> CountByState(v1::JobState state, const std::string* owner = nullptr);

 private:
  // A job as stored: the message and the seq of its newest event.
  struct Row {
    v1::Job job;
    int64_t last_seq = 0;
  };

  JobStore(sqlite3* db, NowMicros now);
  // Sets the connection's pragmas and creates or checks the schema.
  absl::Status Init();

  // The helpers below run inside the caller's transaction.
  absl::StatusOr<Row> Load(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts or replaces the job's row: the blob and the columns derived from it.
  absl::Status Store(const std::string& id, const Row& row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stamps `event` with ++*last_seq and `now_us` and inserts it; the caller
  // then writes *last_seq back to the job's row.
  absl::StatusOr<v1::JobEvent> AddEvent(const std::string& id, int64_t* last_seq,
                                        v1::JobEvent event, int64_t now_us)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> NewId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads the job, applies `change`, stores it, in one transaction.
  absl::Status Update(const std::string& id, const std::function<void(v1::Job*)>& change);

  std::mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
  EventTail tail_ ABSL_GUARDED_BY(mu_);  // every committed event, newest first in line
  const NowMicros now_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_JOB_STORE_H_
