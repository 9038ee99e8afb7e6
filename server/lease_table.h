// LeaseTable: which worker may run which rank of which job attempt, and
// until when. A lease is granted when a job (or one rank of a data-parallel
// job) is placed on a worker, renewed by each of that worker's reports, and
// either released (the attempt ended) or expired (the worker stopped
// reporting for `timeout`). The fencing id is the job's attempt number, so a
// worker still holding an older attempt is refused; the lease's token (a
// secret only its holder was given; the table keeps its sha256) must come
// with every renewal, so the attempt number alone, which viewers see, is
// not enough to act as the holder.
//
// Pure bookkeeping on an injected clock: tests need no sleeps. Not
// thread-safe; the Scheduler calls it under its mutex.
#ifndef SEGQAT_SERVER_LEASE_TABLE_H_
#define SEGQAT_SERVER_LEASE_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
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
  std::string token_sha256;  // of the secret handed to the holder
  int64_t expires_us = 0;
  int64_t acked_seq = 0;         // the worker's events stored so far (duplicates dropped)
  std::set<std::string> inputs;  // jobs whose artifacts the job reads (the holder may too)
};

// The digest a LeaseTable keeps of a lease token (sha256, hex).
std::string LeaseTokenDigest(const std::string& token);

class LeaseTable {
 public:
  LeaseTable(NowMicros now, int64_t timeout_us) : now_(std::move(now)), timeout_us_(timeout_us) {}

  // A new lease on rank `rank` of `job_id` for `worker_id`, replacing any
  // earlier one; `token_sha256` is the digest of the secret its holder gets.
  Lease& Grant(const std::string& job_id, int rank, const std::string& worker_id, int64_t fencing,
               const std::string& token_sha256);
  // Extends the lease if `worker_id` holds `fencing` on that rank, presents
  // its `token` and it has not expired; Aborted (naming what is stale, never
  // the token) otherwise.
  absl::StatusOr<Lease*> Renew(const std::string& job_id, int rank, const std::string& worker_id,
                               int64_t fencing, const std::string& token);
  // Aborted unless `worker_id` holds an unexpired `fencing` on that rank
  // and presents its token.
  absl::Status Check(const std::string& job_id, int rank, const std::string& worker_id,
                     int64_t fencing, const std::string& token) const;
  void Release(const std::string& job_id, int rank);
  // Releases every rank's lease on the job.
  void ReleaseJob(const std::string& job_id);
  // Removes and returns every lease whose time is up.
  std::vector<Lease> TakeExpired();
  // The lease `worker_id` holds, if any.
  std::optional<Lease> HeldBy(const std::string& worker_id) const;
  // Every lease, by (job id, rank).
  const std::map<std::pair<std::string, int>, Lease>& all() const { return leases_; }
  size_t size() const { return leases_.size(); }

 private:
  NowMicros now_;
  int64_t timeout_us_;
  std::map<std::pair<std::string, int>, Lease> leases_;  // by (job id, rank)
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_LEASE_TABLE_H_
