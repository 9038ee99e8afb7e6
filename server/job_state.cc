#include "server/job_state.h"

namespace segqat::server {

bool IsFinal(v1::JobState s) { return s == v1::SUCCEEDED || s == v1::FAILED || s == v1::CANCELLED; }

bool IsLegalTransition(v1::JobState from, v1::JobState to) {
  switch (from) {
    case v1::QUEUED:
      return to == v1::RUNNING || to == v1::CANCELLED;
    case v1::RUNNING:
      return to == v1::SUCCEEDED || to == v1::FAILED || to == v1::CANCELLING || to == v1::QUEUED;
    case v1::CANCELLING:
      return to == v1::CANCELLED || to == v1::SUCCEEDED || to == v1::FAILED || to == v1::QUEUED;
    default:
      return false;
  }
}

const char* StateName(v1::JobState s) { return v1::JobState_Name(s).c_str(); }

}  // namespace segqat::server
