// The job as the API carries it (v1::JobSpec) and the job request (job/job_request.h):
// the one mapping between them, and the rules that concern the spec itself.
#ifndef SEGQAT_JOB_JOB_SPEC_H_
#define SEGQAT_JOB_JOB_SPEC_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "job/job_request.h"
#include "segqat/v1/jobs.pb.h"

namespace segqat::job {

// The request a spec states, with the defaults for the values it leaves
// unset (0). InvalidArgument naming the spec field for a spec no request can
// come from: no or an unknown kind, negative numbers, GPUs or ranks out of
// range, calibration or a drop budget for a kind that has none. GPU
// placement (use_gpu, gpu_index) is the scheduler's: left unset here.
absl::StatusOr<JobRequest> FromSpec(const v1::JobSpec& spec);

v1::JobKind ToProto(JobKind kind);

// The CUDA devices a job needs on one worker: spec.gpus, or 1 for use_gpu.
int GpusNeeded(const v1::JobSpec& spec);

// The spec that states `request` (segqat sends it): values at their defaults
// are left unset, as FromSpec reads them back.
v1::JobSpec ToSpec(const JobRequest& request);

// FromSpec, AssembleConfig and CheckJob: everything segqatd can check
// without a filesystem. Returns the assembled config.
absl::StatusOr<Config> CheckSpec(const v1::JobSpec& spec);

}  // namespace segqat::job

#endif  // SEGQAT_JOB_JOB_SPEC_H_
