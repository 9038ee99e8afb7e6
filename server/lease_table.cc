#include "server/lease_table.h"

#include "absl/strings/str_cat.h"

namespace segqat::server {

Lease& LeaseTable::Grant(const std::string& job_id, int rank, const std::string& worker_id,
                               int64_t fencing) {
  Lease& l = leases_[{job_id, rank}];
  l = Lease{job_id, rank, worker_id, fencing, now_() + timeout_us_, 0};
  return l;
}

absl::Status LeaseTable::Check(const std::string& job_id, int rank, const std::string& worker_id,
                               int64_t fencing) const {
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
  return absl::OkStatus();
}

absl::StatusOr<Lease*> LeaseTable::Renew(const std::string& job_id, int rank,
                                         const std::string& worker_id, int64_t fencing) {
  if (auto st = Check(job_id, rank, worker_id, fencing); !st.ok()) return st;
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
