#include "server/lease_table.h"

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace segqat::server {

namespace {

// Equal digests, in time that does not depend on where they differ.
bool SameDigest(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

std::string LeaseTokenDigest(const std::string& token) {
  Sha256 h;
  h.Update(token);
  return h.HexDigest();
}

Lease& LeaseTable::Grant(const std::string& job_id, int rank, const std::string& worker_id,
                         int64_t fencing, const std::string& token_sha256) {
  Lease& l = leases_[{job_id, rank}];
  l = Lease{job_id, rank, worker_id, fencing, token_sha256, now_() + timeout_us_, 0, {}};
  return l;
}

absl::Status LeaseTable::Check(const std::string& job_id, int rank, const std::string& worker_id,
                               int64_t fencing, const std::string& token) const {
  auto it = leases_.find({job_id, rank});
  if (it == leases_.end()) {
    return absl::AbortedError(absl::StrCat("lease: no lease on job ", job_id,
                                           rank == 0 ? "" : absl::StrCat(" rank ", rank),
                                           " (expired, released or never granted)"));
  }
  const Lease& l = it->second;
  if (l.expires_us <= now_()) {
    return absl::AbortedError(absl::StrCat("lease: job ", job_id, " attempt ", l.fencing,
                                           " expired; the job goes back to the queue"));
  }
  if (l.worker_id != worker_id || l.fencing != fencing) {
    return absl::AbortedError(absl::StrCat("lease: job ", job_id, " attempt ", fencing,
                                           " is stale; attempt ", l.fencing, " runs on ",
                                           l.worker_id));
  }
  if (l.token_sha256.empty() || !SameDigest(l.token_sha256, LeaseTokenDigest(token))) {
    return absl::AbortedError(absl::StrCat("lease: job ", job_id, " attempt ", fencing,
                                           ": wrong lease token; only the worker it was "
                                           "granted to holds it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Lease*> LeaseTable::Renew(const std::string& job_id, int rank,
                                         const std::string& worker_id, int64_t fencing,
                                         const std::string& token) {
  if (auto st = Check(job_id, rank, worker_id, fencing, token); !st.ok()) return st;
  Lease& l = leases_[{job_id, rank}];
  l.expires_us = now_() + timeout_us_;
  return &l;
}

void LeaseTable::Release(const std::string& job_id, int rank) { leases_.erase({job_id, rank}); }

void LeaseTable::ReleaseJob(const std::string& job_id) {
  leases_.erase(leases_.lower_bound({job_id, 0}), leases_.lower_bound({job_id + '\0', 0}));
}

std::vector<Lease> LeaseTable::TakeExpired() {
  std::vector<Lease> out;
  const int64_t now = now_();
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires_us <= now) {
      out.push_back(it->second);
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::optional<Lease> LeaseTable::HeldBy(const std::string& worker_id) const {
  for (const auto& [key, l] : leases_) {
    if (l.worker_id == worker_id) return l;
  }
  return std::nullopt;
}

}  // namespace segqat::server
