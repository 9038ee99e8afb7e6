// Thin RAII helpers over SQLite's C API for the job store: a prepared
// statement whose errors turn into absl::Status, and a transaction that rolls
// back unless committed. Thread-compatible: use one connection per thread or
// guard it, as JobStore does.
#ifndef SEGQAT_SERVER_SQLITE_H_
#define SEGQAT_SERVER_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace segqat::server {

// Runs SQL without results; Internal with SQLite's message on failure.
absl::Status Exec(sqlite3* db, const char* sql);

// One prepared statement, finalized on destruction. Errors from preparing
// and binding are kept and returned by the first Step.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) Fail();
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& BindInt(int i, int64_t v) {
    if (status_.ok() && sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) Fail();
    return *this;
  }
  // Binds NULL for an empty `v` when `empty_is_null`.
  Stmt& BindText(int i, absl::string_view v, bool empty_is_null = false) {
    int rc =
        empty_is_null && v.empty()
            ? sqlite3_bind_null(stmt_, i)
            : sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    if (status_.ok() && rc != SQLITE_OK) Fail();
    return *this;
  }
  Stmt& BindBlob(int i, const std::string& v) {
    if (status_.ok() && sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                                          SQLITE_TRANSIENT) != SQLITE_OK) {
      Fail();
    }
    return *this;
  }

  // True when a row is ready, false when done.
  absl::StatusOr<bool> Step() {
    if (!status_.ok()) return status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Fail();
    return status_;
  }
  // Steps a statement that returns no rows.
  absl::Status Run() {
    absl::StatusOr<bool> row = Step();
    return row.ok() ? absl::OkStatus() : row.status();
  }

  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) {
    const unsigned char* text = sqlite3_column_text(stmt_, col);
    return text ? std::string(reinterpret_cast<const char*>(text)) : std::string();
  }
  template <typename Message>
  absl::Status Parse(int col, Message* message) {
    const void* data = sqlite3_column_blob(stmt_, col);
    if (!message->ParseFromArray(data, sqlite3_column_bytes(stmt_, col))) {
      return absl::InternalError(
          absl::StrCat("corrupt ", Message::descriptor()->name(), " record in the job database"));
    }
    return absl::OkStatus();
  }

 private:
  void Fail() {
    if (status_.ok()) {
      const char* sql = stmt_ ? sqlite3_sql(stmt_) : nullptr;
      status_ = absl::InternalError(
          absl::StrCat("sqlite: ", sqlite3_errmsg(db_), sql ? absl::StrCat(" in: ", sql) : ""));
    }
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status status_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (!sqlite3_get_autocommit(db_)) Exec(db_, "ROLLBACK").IgnoreError();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // For writes: takes the write lock now, so the transaction cannot fail
  // later for want of it.
  absl::Status Begin() { return Exec(db_, "BEGIN IMMEDIATE"); }
  // For reads: one consistent snapshot across statements.
  absl::Status BeginRead() { return Exec(db_, "BEGIN"); }
  absl::Status Commit() { return Exec(db_, "COMMIT"); }

 private:
  sqlite3* db_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_SQLITE_H_
