// The job lifecycle. Legal transitions:
//   QUEUED     -> RUNNING | CANCELLED
//   RUNNING    -> SUCCEEDED | FAILED | CANCELLING | QUEUED (restart, lost worker)
//   CANCELLING -> CANCELLED | SUCCEEDED | FAILED | QUEUED
// SUCCEEDED, FAILED and CANCELLED are final.
#ifndef SEGQAT_SERVER_JOB_STATE_H_
#define SEGQAT_SERVER_JOB_STATE_H_

#include "segqat/v1/jobs.pb.h"

namespace segqat::server {

bool IsLegalTransition(v1::JobState from, v1::JobState to);
bool IsFinal(v1::JobState state);
// "QUEUED", "RUNNING", ...
const char* StateName(v1::JobState state);

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_JOB_STATE_H_
