// The one place a status crosses between absl and gRPC, both ways: segqatd's
// handlers answer with ToGrpc, and its clients (segqat, the workers) read
// the answer with FromGrpc. The code is kept; gRPC's codes are absl's.
#ifndef SEGQAT_COMMON_GRPC_STATUS_H_
#define SEGQAT_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace segqat {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// `what` (optional) names the call in the message: "upload of final/model.pt: ...".
inline absl::Status FromGrpc(const grpc::Status& s, absl::string_view what = {}) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(
      static_cast<absl::StatusCode>(s.error_code()),
      what.empty() ? s.error_message() : absl::StrCat(what, ": ", s.error_message()));
}

}  // namespace segqat

#endif  // SEGQAT_COMMON_GRPC_STATUS_H_
