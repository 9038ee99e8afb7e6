// The one place absl::Status becomes a grpc::Status.
#ifndef SEGQAT_SERVER_GRPC_STATUS_H_
#define SEGQAT_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace segqat::server {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_GRPC_STATUS_H_
