// What segqatd checks of a job before it accepts it: the spec and its config
// against the schema, and references to other jobs' artifacts
// ("jobs/ID/final") against the job store. Purely: no path in the config is
// opened here; workers read datasets and checkpoints on their own disks, and
// a job whose files a worker cannot read fails with the worker's reason.
#ifndef SEGQAT_SERVER_JOB_VALIDATION_H_
#define SEGQAT_SERVER_JOB_VALIDATION_H_

#include "absl/status/status.h"
#include "segqat/v1/jobs.pb.h"
#include "server/job_store.h"

namespace segqat::server {

// InvalidArgument naming the field or config key.
absl::Status ValidateJobSpec(const v1::JobSpec& spec, JobStore* store);

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_JOB_VALIDATION_H_
