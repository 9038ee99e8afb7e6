// Records one finished RPC (method, status code, duration) in the metrics.
#ifndef SEGQAT_SERVER_RPC_METRICS_H_
#define SEGQAT_SERVER_RPC_METRICS_H_

#include <grpcpp/support/status.h>

#include <chrono>
#include <functional>

#include "absl/status/status.h"
#include "server/server_metrics.h"

namespace segqat::server {

// A recorder started now; call it once with the RPC's final status. A null
// `metrics` records nothing.
inline std::function<void(const grpc::Status&)> Recorder(ServerMetrics* metrics,
                                                         const char* method) {
  if (metrics == nullptr) return [](const grpc::Status&) {};
  const auto t0 = std::chrono::steady_clock::now();
  return [metrics, method, t0](const grpc::Status& st) {
    metrics->Rpc(method, absl::StatusCodeToString(static_cast<absl::StatusCode>(st.error_code())),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
}

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_RPC_METRICS_H_
