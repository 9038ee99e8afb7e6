// Moving artifacts between a worker and segqatd over RPC: uploads (checked by
// the server against their sha256 and published atomically) and fetches of
// other jobs' artifacts, kept in a cache by digest so a worker downloads
// each distinct file once.
#ifndef SEGQAT_WORKER_TRANSFER_H_
#define SEGQAT_WORKER_TRANSFER_H_

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "segqat/v1/jobs.grpc.pb.h"
#include "segqat/v1/workers.grpc.pb.h"

namespace segqat::agent {

// Uploads `local` (a file, or every file below a directory, in name order)
// as the artifact `name` (or name/RELATIVE) of the lease's job. Aborted when
// the lease is stale; DataLoss when the server received other bytes.
// `snapshot`: `local` is a snapshot folder, and its last file's upload
// marks it whole (completes_snapshot), which makes it the job's resume point
// on segqatd.
absl::Status Upload(v1::WorkerService::Stub* stub, const std::string& worker_id,
                    const v1::Lease& lease, const std::string& local, const std::string& name,
                    std::chrono::seconds deadline, bool snapshot = false);

// Places job `job_id`'s artifact `name` (a file, or every artifact below
// name/) at `dest`, verified by sha256, through the cache in `cache_dir`.
// NotFound when the job has no such artifact.
absl::Status Fetch(v1::JobService::Stub* stub, const std::string& job_id, const std::string& name,
                   const std::string& cache_dir, const std::string& dest,
                   std::chrono::seconds deadline);

// The snapshots job `job_id` has uploaded ("snapshots/N"), newest first.
absl::StatusOr<std::vector<std::string>> ListSnapshots(v1::JobService::Stub* stub,
                                                       const std::string& job_id,
                                                       std::chrono::seconds deadline);

}  // namespace segqat::agent

#endif  // SEGQAT_WORKER_TRANSFER_H_
