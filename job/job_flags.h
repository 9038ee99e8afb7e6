// The flags a job takes on the command line, one table for both command
// lines: `segqat KIND ...` (which sends the job to segqatd) and
// `segqat-worker KIND ...` (which runs it here) parse the same flags into the
// same job request, so the two cannot disagree. Each adds flags of its own
// that are not the job's (segqat: --gpus, --priority, --wait, ...;
// segqat-worker: --metrics-json, --world-size, ...).
#ifndef SEGQAT_JOB_JOB_FLAGS_H_
#define SEGQAT_JOB_JOB_FLAGS_H_

#include <vector>

#include "absl/status/status.h"
#include "job/flags.h"
#include "job/job_request.h"

namespace segqat::job {

// The job's flags for `kind` (kTrain covers `--quant`):
//   all:          --cfg FILE
//   but export:   --not_quant_pattern P [P ...], --use_gpu, --use_mpio (PaddleSeg's
//                 multiprocess reader: accepted; the loader is threaded anyway)
//   train:        --quant, --do_eval, --log_steps N
//   eval:         --convert
//   ptq:          --calib M, --calib-batches N, --do_eval
//   sensitivity:  --calib M, --calib-batches N, --budget POINTS
std::vector<FlagSpec> JobFlags(JobKind kind);

// `flags` (parsed with JobFlags(request->kind) among others) into `request`:
// the --cfg file's text, the trailing KEY VALUE overrides, and each flag.
// Values are checked for their form only ("--log_steps: expects an
// integer"); CheckJob judges them, as it does for a job from the API.
absl::Status ApplyJobFlags(const ParsedFlags& flags, JobRequest* request);

}  // namespace segqat::job

#endif  // SEGQAT_JOB_JOB_FLAGS_H_
