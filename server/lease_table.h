// LeaseTable: which worker may run which rank of which job attempt, and
// until when. A lease is granted when a job (or one rank of a data-parallel
// job) is placed on a worker, renewed by each of that worker's reports, and
// either released (the attempt ended) or expired (the worker stopped
// reporting for `timeout`). The fencing id is the job's attempt number, so a
// worker still holding an older attempt is refused.
//
// Pure bookkeeping on an injected clock: tests need no sleeps. Not
// thread-safe; the Scheduler calls it under its mutex.
#ifndef SEGQAT_SERVER_LEASE_TABLE_H_
#define SEGQAT_SERVER_LEASE_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/job_store.h"

namespace segqat::server {

struct Lease {
  std::string job_id;
  int rank = 0;
  std::string worker_id;
  int64_t fencing = 0;
  int64_t expires_us = 0;
  int64_t acked_seq = 0;  // the worker's events stored so far (duplicates dropped)
};

class LeaseTable {
 public:
  LeaseTable(NowMicros now, int64_t timeout_us) : now_(std::move(now)), timeout_us_(timeout_us) {}

  // A new lease on rank `rank` of `job_id` for `worker_id`, replacing any
  // earlier one.
  Lease& Grant(const std::string& job_id, int rank, const std::string& worker_id,
                     int64_t fencing);
  // Extends the lease if `worker_id` holds `fencing` on that rank and it has
  // not expired; Aborted (naming what is stale) otherwise.
  absl::StatusOr<Lease*> Renew(const std::string& job_id, int rank, const std::string& worker_id,
                               int64_t fencing);
  // Aborted unless `worker_id` holds an unexpired `fencing` on that rank.
  absl::Status Check(const std::string& job_id, int rank, const std::string& worker_id,
                     int64_t fencing) const;
  void Release(const std::string& job_id, int rank);
  // Releases every rank's lease on the job.
  void ReleaseJob(const std::string& job_id);
  // Removes and returns every lease whose time is up.
  std::vector<Lease> TakeExpired();
  // The lease `worker_id` holds, if any.
  std::optional<Lease> HeldBy(const std::string& worker_id) const;
  size_t size() const { return leases_.size(); }

 private:
  NowMicros now_;
  int64_t timeout_us_;
  std::map<std::pair<std::string, int>, Lease> leases_;  // by (job id, rank)
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_LEASE_TABLE_H_
