// What segqatd checks of a job before it accepts it: the spec and its config
// against the schema, and references to other jobs' artifacts
// ("jobs/ID/final") against the job store. Purely: no path in the config is
// opened here; workers read datasets and checkpoints on their own disks, and
// a job whose files a worker cannot read fails with the worker's reason.
#ifndef SEGQAT_SERVER_JOB_VALIDATION_H_
#define SEGQAT_SERVER_JOB_VALIDATION_H_

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "segqat/v1/jobs.pb.h"
#include "server/job_store.h"

namespace segqat::server {

// InvalidArgument naming the field or config key: job::CheckSpec (the rules
// every entry point applies), then the references to other jobs' artifacts.
absl::Status ValidateJobSpec(const v1::JobSpec& spec, JobStore* store);

// The jobs whose artifacts the spec reads (ArtifactReferenceKeys whose value
// is "jobs/ID/..."), as a worker running it fetches them.
std::set<std::string> InputJobIds(const v1::JobSpec& spec);

// What one CreateJob may ask for (segqatd flags where noted).
struct JobLimits {
  int64_t max_config_bytes = int64_t{1} << 20;  // --max-config-bytes: YAML + overrides
  int max_overrides = 256;                      // KEY VALUE pairs
  int max_labels = 32;
  int max_label_bytes = 256;        // each key and each value
  int max_queued_per_owner = 1000;  // --max-queued-per-token
};

// The request's sizes against `limits` (InvalidArgument naming the field),
// then the owner's queued jobs (ResourceExhausted), then ValidateJobSpec.
absl::Status ValidateCreateJob(const v1::CreateJobRequest& request, const std::string& owner,
                               const JobLimits& limits, JobStore* store);

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_JOB_VALIDATION_H_
