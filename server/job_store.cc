#include "server/job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "job/artifact_layout.h"
#include "job/job_spec.h"
#include "server/job_state.h"
#include "server/sqlite.h"

namespace segqat::server {
namespace {

constexpr int kIdBytes = 6;  // 12 hex characters
constexpr int kMaxIdAttempts = 16;

google::protobuf::Timestamp ToTimestamp(int64_t us) {
  int64_t seconds = us / 1000000;
  int64_t rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  t.set_nanos(static_cast<int32_t>(rem * 1000));
  return t;
}

int64_t ToMicros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

absl::Status JobNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
}

}  // namespace

NowMicros SystemClock() {
  return [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
}

absl::StatusOr<JobStore::Row> JobStore::Load(const std::string& id) {
  Stmt s(db_, "SELECT last_seq, job FROM jobs WHERE id = ?1");
  s.BindText(1, id);
  absl::StatusOr<bool> row = s.Step();
  if (!row.ok()) return row.status();
  if (!*row) return JobNotFound(id);
  Row r;
  r.last_seq = s.Int(0);
  absl::Status status = s.Parse(1, &r.job);
  if (!status.ok()) return status;
  return r;
}

absl::Status JobStore::Store(const std::string& id, const Row& row) {
  // request_id never changes after the insert.
  Stmt s(
      db_,
      "INSERT INTO jobs (id, request_id, state, kind, priority, create_us, last_seq, job, owner, "
      "gpus) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO UPDATE SET "
      "state = excluded.state, kind = excluded.kind, priority = excluded.priority, "
      "create_us = excluded.create_us, last_seq = excluded.last_seq, job = excluded.job, "
      "owner = excluded.owner, gpus = excluded.gpus");
  s.BindText(1, id)
      .BindText(2, row.job.request_id(), /*empty_is_null=*/true)
      .BindInt(3, row.job.state())
      .BindInt(4, row.job.kind())
      .BindInt(5, row.job.priority())
      .BindInt(6, ToMicros(row.job.create_time()))
      .BindInt(7, row.last_seq)
      .BindBlob(8, row.job.SerializeAsString())
      .BindText(9, row.job.owner())
      .BindInt(10, job::GpusNeeded(row.job.spec()));
  return s.Run();
}

absl::StatusOr<v1::JobEvent> JobStore::AddEvent(const std::string& id, int64_t* last_seq,
                                                v1::JobEvent event, int64_t now_us) {
  event.set_seq(++*last_seq);
  *event.mutable_time() = ToTimestamp(now_us);
  Stmt s(db_, "INSERT INTO events (job_id, seq, event) VALUES (?1, ?2, ?3)");
  s.BindText(1, id).BindInt(2, event.seq()).BindBlob(3, event.SerializeAsString());
  absl::Status status = s.Run();
  if (!status.ok()) return status;
  return event;
}

absl::StatusOr<std::string> JobStore::NewId() {
  for (int attempt = 0; attempt < kMaxIdAttempts; ++attempt) {
    unsigned char bytes[kIdBytes];
    sqlite3_randomness(kIdBytes, bytes);
    std::string id =
        absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), kIdBytes));
    Stmt s(db_, "SELECT 1 FROM jobs WHERE id = ?1");
    absl::StatusOr<bool> taken = s.BindText(1, id).Step();
    if (!taken.ok()) return taken.status();
    if (!*taken) return id;
  }
  return absl::InternalError("cannot find an unused job id");
}

absl::StatusOr<std::pair<v1::Job, bool>> JobStore::Create(const v1::CreateJobRequest& request,
                                                          const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  absl::Status status = txn.Begin();
  if (!status.ok()) return status;

  if (!request.request_id().empty()) {
    Stmt s(db_, "SELECT job, last_seq FROM jobs WHERE request_id = ?1");
    absl::StatusOr<bool> found = s.BindText(1, request.request_id()).Step();
    if (!found.ok()) return found.status();
    if (*found) {
      v1::Job earlier;
      if (status = s.Parse(0, &earlier); !status.ok()) return status;
      if (earlier.owner() != owner) {
        return absl::AlreadyExistsError("request_id: already used by another caller");
      }
      earlier.set_last_event_seq(s.Int(1));
      return std::make_pair(std::move(earlier), false);
    }
  }

  absl::StatusOr<std::string> id = NewId();
  if (!id.ok()) return id.status();
  const int64_t now_us = now_();
  Row row;
  v1::Job& job = row.job;
  job.set_name(absl::StrCat("jobs/", *id));
  job.set_kind(request.spec().kind());
  job.set_state(v1::QUEUED);
  *job.mutable_create_time() = ToTimestamp(now_us);
  job.set_attempt(0);
  *job.mutable_spec() = request.spec();
  *job.mutable_labels() = request.labels();
  job.set_priority(request.priority());
  job.mutable_progress()->set_best_miou(-1);
  job.set_request_id(request.request_id());
  job.set_owner(owner);

  // The job row first: the event's foreign key needs it.
  if (status = Store(*id, row); !status.ok()) return status;
  v1::JobEvent event;
  event.mutable_state()->set_state(v1::QUEUED);
  event.mutable_state()->set_reason("created");
  absl::StatusOr<v1::JobEvent> added = AddEvent(*id, &row.last_seq, std::move(event), now_us);
  if (!added.ok()) return added.status();
  if (status = Store(*id, row); !status.ok()) return status;
  if (status = txn.Commit(); !status.ok()) return status;
  tail_.Add(*id, *added);
  job.set_last_event_seq(row.last_seq);
  return std::make_pair(std::move(job), true);
}

absl::StatusOr<v1::Job> JobStore::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<Row> row = Load(id);
  if (!row.ok()) return row.status();
  row->job.set_last_event_seq(row->last_seq);
  return std::move(row->job);
}

absl::StatusOr<v1::Job> JobStore::Transition(const std::string& id, v1::JobState to,
                                             const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  absl::Status status = txn.Begin();
  if (!status.ok()) return status;
  absl::StatusOr<Row> row = Load(id);
  if (!row.ok()) return row.status();
  v1::Job& job = row->job;
  if (!IsLegalTransition(job.state(), to)) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id, " is ", StateName(job.state()),
                                                      "; cannot move to ", StateName(to)));
  }
  const int64_t now_us = now_();
  job.set_state(to);
  if (to == v1::RUNNING) {
    *job.mutable_start_time() = ToTimestamp(now_us);
    job.set_attempt(job.attempt() + 1);
  }
  if (IsFinal(to)) {
    *job.mutable_end_time() = ToTimestamp(now_us);
    // An ended job keeps only its outputs. Its snapshots leave the listing in
    // the same transaction as the state, so no reader ever sees an ended job
    // that lists them (the scheduler removes their files afterwards).
    auto* list = job.mutable_artifacts();
    list->erase(std::remove_if(list->begin(), list->end(),
                               [](const v1::Artifact& a) {
                                 return absl::StartsWith(a.name(),
                                                         absl::StrCat(job::kSnapshots, "/"));
                               }),
                list->end());
  }
  if (to == v1::FAILED) job.set_error(reason);

  v1::JobEvent event;
  event.mutable_state()->set_state(to);
  event.mutable_state()->set_reason(reason);
  absl::StatusOr<v1::JobEvent> added = AddEvent(id, &row->last_seq, std::move(event), now_us);
  if (!added.ok()) return added.status();
  if (status = Store(id, *row); !status.ok()) return status;
  if (status = txn.Commit(); !status.ok()) return status;
  tail_.Add(id, *added);
  job.set_last_event_seq(row->last_seq);
  return std::move(job);
}

absl::Status JobStore::Update(const std::string& id, const std::function<void(v1::Job*)>& change) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  absl::Status status = txn.Begin();
  if (!status.ok()) return status;
  absl::StatusOr<Row> row = Load(id);
  if (!row.ok()) return row.status();
  change(&row->job);
  if (status = Store(id, *row); !status.ok()) return status;
  return txn.Commit();
}

absl::Status JobStore::SetProgress(const std::string& id, const v1::Progress& progress) {
  return Update(id, [&](v1::Job* job) { *job->mutable_progress() = progress; });
}

absl::Status JobStore::AddArtifact(const std::string& id, const v1::Artifact& artifact) {
  return Update(id, [&](v1::Job* job) {
    for (v1::Artifact& a : *job->mutable_artifacts()) {
      if (a.name() == artifact.name()) {
        a = artifact;
        return;
      }
    }
    *job->add_artifacts() = artifact;
  });
}

absl::Status JobStore::SetWorker(const std::string& id, const std::string& worker) {
  return Update(id, [&](v1::Job* job) { job->set_worker(worker); });
}

absl::StatusOr<v1::Job> JobStore::AddLostAttempt(const std::string& id) {
  if (auto st = Update(id, [](v1::Job* job) { job->set_lost_attempts(job->lost_attempts() + 1); });
      !st.ok()) {
    return st;
  }
  return Get(id);
}

absl::Status JobStore::SetLeaseToken(const std::string& id, const std::string& token_sha256) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_,
         "INSERT INTO leases (job_id, token_sha256) VALUES (?1, ?2) ON CONFLICT (job_id) "
         "DO UPDATE SET token_sha256 = excluded.token_sha256, acked_worker_seq = 0");
  s.BindText(1, id).BindText(2, token_sha256);
  absl::StatusOr<bool> done = s.Step();
  return done.ok() ? absl::OkStatus() : done.status();
}

absl::StatusOr<std::string> JobStore::LeaseToken(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "SELECT token_sha256 FROM leases WHERE job_id = ?1");
  s.BindText(1, id);
  absl::StatusOr<bool> row = s.Step();
  if (!row.ok()) return row.status();
  return *row ? s.Text(0) : std::string();
}

absl::StatusOr<int64_t> JobStore::AckedWorkerSeq(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "SELECT acked_worker_seq FROM leases WHERE job_id = ?1");
  s.BindText(1, id);
  absl::StatusOr<bool> row = s.Step();
  if (!row.ok()) return row.status();
  return *row ? s.Int(0) : 0;
}

absl::Status JobStore::SetSnapshot(const std::string& id, const std::string& snapshot) {
  return Update(id, [&](v1::Job* job) { job->set_snapshot(snapshot); });
}

absl::Status JobStore::RemoveArtifacts(const std::string& id, const std::string& prefix) {
  return Update(id, [&](v1::Job* job) {
    auto* list = job->mutable_artifacts();
    list->erase(std::remove_if(list->begin(), list->end(),
                               [&](const v1::Artifact& a) {
                                 return a.name() == prefix ||
                                        absl::StartsWith(a.name(), prefix + "/");
                               }),
                list->end());
  });
}

absl::Status JobStore::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  absl::Status status = txn.Begin();
  if (!status.ok()) return status;
  absl::StatusOr<Row> row = Load(id);
  if (!row.ok()) return row.status();
  const v1::JobState state = row->job.state();
  if (state != v1::SUCCEEDED && state != v1::FAILED && state != v1::CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " has not ended; cancel it first"));
  }
  for (const char* sql :
       {"DELETE FROM events WHERE job_id = ?1", "DELETE FROM jobs WHERE id = ?1"}) {
    Stmt s(db_, sql);
    if (auto done = s.BindText(1, id).Step(); !done.ok()) return done.status();
  }
  return txn.Commit();
}

absl::StatusOr<v1::JobEvent> JobStore::AppendEvent(const std::string& id, v1::JobEvent event) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  absl::Status status = txn.Begin();
  if (!status.ok()) return status;
  // Only the seq column: the job's blob is not touched.
  int64_t last_seq = 0;
  {  // A statement still open would block the COMMIT.
    Stmt get(db_, "SELECT last_seq FROM jobs WHERE id = ?1");
    absl::StatusOr<bool> found = get.BindText(1, id).Step();
    if (!found.ok()) return found.status();
    if (!*found) return JobNotFound(id);
    last_seq = get.Int(0);
  }
  absl::StatusOr<v1::JobEvent> added = AddEvent(id, &last_seq, std::move(event), now_());
  if (!added.ok()) return added.status();
  Stmt set(db_, "UPDATE jobs SET last_seq = ?2 WHERE id = ?1");
  if (status = set.BindText(1, id).BindInt(2, last_seq).Run(); !status.ok()) return status;
  if (added->worker_seq() > 0) {
    Stmt acked(db_, "UPDATE leases SET acked_worker_seq = ?2 WHERE job_id = ?1");
    if (status = acked.BindText(1, id).BindInt(2, added->worker_seq()).Run(); !status.ok()) {
      return status;
    }
  }
  if (status = txn.Commit(); !status.ok()) return status;
  tail_.Add(id, *added);
  return added;
}

absl::StatusOr<std::vector<v1::JobEvent>> JobStore::ReadEvents(const std::string& id,
                                                               int64_t after_seq, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::JobEvent> cached;
  if (limit > 0 && tail_.Read(id, after_seq, limit, &cached)) return cached;
  // One read transaction, so the job check and the events agree.
  Transaction txn(db_);
  absl::Status status = txn.BeginRead();
  if (!status.ok()) return status;
  Stmt exists(db_, "SELECT 1 FROM jobs WHERE id = ?1");
  absl::StatusOr<bool> found = exists.BindText(1, id).Step();
  if (!found.ok()) return found.status();
  if (!*found) return JobNotFound(id);
  std::vector<v1::JobEvent> events;
  if (limit <= 0) return events;
  Stmt s(db_, "SELECT event FROM events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
  s.BindText(1, id).BindInt(2, after_seq).BindInt(3, limit);
  for (;;) {
    absl::StatusOr<bool> row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (status = s.Parse(0, &events.emplace_back()); !status.ok()) return status;
  }
  return events;
}

}  // namespace segqat::server
