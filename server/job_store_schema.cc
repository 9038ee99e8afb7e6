// The job store's database (server/job_store.h): opening it (WAL, busy
// timeout) and its schema, created or migrated version by version.
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
#include "server/job_store.h"
#include "server/sqlite.h"

namespace segqat::server {
namespace {

constexpr int kSchemaVersion = 3;
constexpr int kBusyTimeoutMs = 5000;

// Version 1. The blob is the whole v1::Job; the columns repeat the fields
// that queries filter and sort on and are written together with it.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  request_id TEXT UNIQUE,
  state INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  create_us INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  job BLOB NOT NULL
);
CREATE INDEX jobs_by_create ON jobs (create_us DESC, id DESC);
CREATE INDEX jobs_by_state ON jobs (state, priority DESC, create_us ASC);
CREATE TABLE events (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

// Version 2: the digest of each running attempt's lease token, so a
// restarted server still knows who holds the lease (never the token); the
// owner as a column, and indexes that let the queue be counted and walked
// without reading any job's blob.
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE leases (
  job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  token_sha256 TEXT NOT NULL
) WITHOUT ROWID;
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN gpus INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_state_owner ON jobs (state, owner);
CREATE INDEX jobs_queue ON jobs (state, gpus, priority DESC, create_us ASC, id ASC);
PRAGMA user_version = 2;
)sql";

// Version 3: the newest worker event stored for the running attempt, written
// with the event, so a restarted server acknowledges exactly what it holds.
constexpr char kSchemaV3[] = R"sql(
ALTER TABLE leases ADD COLUMN acked_worker_seq INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 3;
)sql";

absl::Status UseWal(sqlite3* db) {
  Stmt s(db, "PRAGMA journal_mode = WAL");
  absl::StatusOr<bool> row = s.Step();
  if (!row.ok()) return row.status();
  if (!*row || s.Text(0) != "wal") {
    return absl::FailedPreconditionError("cannot use write-ahead logging (journal_mode=WAL)");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> UserVersion(sqlite3* db) {
  Stmt s(db, "PRAGMA user_version");
  absl::StatusOr<bool> row = s.Step();
  if (!row.ok()) return row.status();
  return *row ? s.Int(0) : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path, NowMicros now) {
  sqlite3* db = nullptr;
  // mu_ serializes every use of the connection.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::InternalError(absl::StrCat("job database ", path, ": ", message));
  }
  std::unique_ptr<JobStore> store(new JobStore(db, std::move(now)));
  absl::Status status = store->Init();
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("job database ", path, ": ", status.message()));
  }
  return store;
}

JobStore::JobStore(sqlite3* db, NowMicros now) : db_(db), now_(std::move(now)) {}

JobStore::~JobStore() { sqlite3_close_v2(db_); }

absl::Status JobStore::Init() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // The first statement reads the file's header: a file that is not a
  // database fails here.
  absl::Status status = UseWal(db_);
  if (!status.ok()) return status;
  status = Exec(db_, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
  if (!status.ok()) return status;

  Transaction txn(db_);
  if (status = txn.Begin(); !status.ok()) return status;
  absl::StatusOr<int64_t> version = UserVersion(db_);
  if (!version.ok()) return version.status();
  const int64_t v = *version;
  if (v > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("schema version ", v, " is newer than this server's (", kSchemaVersion, ")"));
  }
  if (v == 0 && !(status = Exec(db_, kSchemaV1)).ok()) return status;
  if (v <= 1 && !(status = Exec(db_, kSchemaV2)).ok()) return status;
  if (v <= 2 && !(status = Exec(db_, kSchemaV3)).ok()) return status;
  if (v == 1) {
    // Jobs of version 1 get their owner and gpus columns from their blob.
    std::vector<std::pair<std::string, v1::Job>> owners;
    Stmt all(db_, "SELECT id, job FROM jobs");
    for (;;) {
      absl::StatusOr<bool> row = all.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      v1::Job job;
      if (status = all.Parse(1, &job); !status.ok()) return status;
      owners.emplace_back(all.Text(0), std::move(job));
    }
    for (const auto& [id, job] : owners) {
      Stmt set(db_, "UPDATE jobs SET owner = ?2, gpus = ?3 WHERE id = ?1");
      set.BindText(1, id).BindText(2, job.owner()).BindInt(3, job::GpusNeeded(job.spec()));
      if (status = set.Run(); !status.ok()) return status;
    }
  }
  return txn.Commit();
}

}  // namespace segqat::server
