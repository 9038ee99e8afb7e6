// Listing and counting jobs (server/job_store.h): ListJobs pages and their
// tokens, and the queue's index scans (by state, owner and GPU need).
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
#include "server/job_state.h"
#include "server/job_store.h"
#include "server/sqlite.h"

namespace segqat::server {
namespace {

// A stable digest of a ListJobsRequest's filters (not its paging fields),
// so a page token only continues the query it came from.
std::string FilterHash(const v1::ListJobsRequest& request) {
  std::map<std::string, std::string> labels(request.labels().begin(), request.labels().end());
  std::string key = absl::StrCat(request.state(), ";", request.kind(), ";");
  for (const auto& [k, v] : labels) absl::StrAppend(&key, k.size(), ":", k, v.size(), ":", v);
  uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bit
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16));
}

struct Cursor {
  int64_t create_us = 0;
  std::string id;
};

std::string EncodeToken(const Cursor& c, const std::string& filter_hash) {
  return absl::WebSafeBase64Escape(absl::StrCat(c.create_us, ":", c.id, ":", filter_hash));
}

absl::StatusOr<Cursor> DecodeToken(const std::string& token, const std::string& filter_hash) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) raw.clear();
  std::vector<std::string> parts = absl::StrSplit(raw, ':');
  Cursor c;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &c.create_us) || parts[1].empty()) {
    return absl::InvalidArgumentError("page_token: not a token from ListJobs");
  }
  if (parts[2] != filter_hash) {
    return absl::InvalidArgumentError("page_token: from a query with other filters");
  }
  c.id = std::move(parts[1]);
  return c;
}

bool LabelsMatch(const v1::Job& job, const v1::ListJobsRequest& request) {
  for (const auto& [k, v] : request.labels()) {
    auto it = job.labels().find(k);
    if (it == job.labels().end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<v1::ListJobsResponse> JobStore::List(const v1::ListJobsRequest& request,
                                                    int page_size, int64_t max_bytes) {
  if (page_size < 1) return absl::InvalidArgumentError("page_size must be positive");
  const std::string filter_hash = FilterHash(request);
  Cursor after;
  bool has_cursor = !request.page_token().empty();
  if (has_cursor) {
    absl::StatusOr<Cursor> c = DecodeToken(request.page_token(), filter_hash);
    if (!c.ok()) return c.status();
    after = *std::move(c);
  }

  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_,
         "SELECT create_us, id, job FROM jobs "
         "WHERE (?1 = 0 OR state = ?1) AND (?2 = 0 OR kind = ?2) "
         "AND (?3 = 0 OR create_us < ?4 OR (create_us = ?4 AND id < ?5)) "
         "ORDER BY create_us DESC, id DESC");
  s.BindInt(1, request.state())
      .BindInt(2, request.kind())
      .BindInt(3, has_cursor ? 1 : 0)
      .BindInt(4, after.create_us)
      .BindText(5, after.id);
  v1::ListJobsResponse response;
  Cursor last;
  int64_t bytes = 0;
  for (;;) {
    absl::StatusOr<bool> row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    v1::Job job;
    if (absl::Status status = s.Parse(2, &job); !status.ok()) return status;
    if (!LabelsMatch(job, request)) continue;
    const int64_t size = static_cast<int64_t>(job.ByteSizeLong()) + 16;
    // One more matches: not the end, if the page is full in count or bytes.
    if (response.jobs_size() == page_size ||
        (response.jobs_size() > 0 && bytes + size > max_bytes)) {
      response.set_next_page_token(EncodeToken(last, filter_hash));
      break;
    }
    bytes += size;
    last.create_us = s.Int(0);
    last.id = s.Text(1);
    *response.add_jobs() = std::move(job);
  }
  return response;
}

absl::StatusOr<std::vector<v1::Job>> JobStore::ListByState(v1::JobState state) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_,
         "SELECT job FROM jobs WHERE state = ?1 ORDER BY priority DESC, create_us ASC, id ASC");
  s.BindInt(1, state);
  std::vector<v1::Job> jobs;
  for (;;) {
    absl::StatusOr<bool> row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (absl::Status status = s.Parse(0, &jobs.emplace_back()); !status.ok()) return status;
  }
  return jobs;
}

absl::StatusOr<int64_t> JobStore::CountByState(v1::JobState state, const std::string* owner) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, owner == nullptr ? "SELECT COUNT(*) FROM jobs WHERE state = ?1"
                               : "SELECT COUNT(*) FROM jobs WHERE state = ?1 AND owner = ?2");
  s.BindInt(1, state);
  if (owner != nullptr) s.BindText(2, *owner);
  absl::StatusOr<bool> row = s.Step();
  if (!row.ok()) return row.status();
  return *row ? s.Int(0) : 0;
}

absl::StatusOr<std::vector<std::string>> JobStore::IdsByState(v1::JobState state, int max_gpus,
                                                              int limit, int64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_,
         "SELECT id FROM jobs WHERE state = ?1 AND gpus <= ?4 "
         "ORDER BY priority DESC, create_us ASC, id ASC LIMIT ?2 OFFSET ?3");
  s.BindInt(1, state).BindInt(2, limit).BindInt(3, offset).BindInt(4, max_gpus);
  std::vector<std::string> ids;
  for (;;) {
    absl::StatusOr<bool> row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ids.push_back(s.Text(0));
  }
  return ids;
}

}  // namespace segqat::server
