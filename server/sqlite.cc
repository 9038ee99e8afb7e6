#include "server/sqlite.h"

namespace segqat::server {

absl::Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) == SQLITE_OK) return absl::OkStatus();
  absl::Status status =
      absl::InternalError(absl::StrCat("sqlite: ", error ? error : sqlite3_errmsg(db)));
  sqlite3_free(error);
  return status;
}

}  // namespace segqat::server
