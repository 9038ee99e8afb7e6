// A small client library over segqat's gRPC API, for the CLI and for tests:
// every call has a deadline; WatchJob re-attaches after a dropped stream
// with after_seq so no event is lost or seen twice; downloads resume from a
// partial file and verify the sha256.
#ifndef SEGQAT_CLIENT_CLIENT_H_
#define SEGQAT_CLIENT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "segqat/v1/jobs.grpc.pb.h"

namespace segqat::client {

class Client {
 public:
  // `target` is HOST:PORT. `deadline` applies to each unary call.
  explicit Client(const std::string& target,
                  std::chrono::milliseconds deadline = std::chrono::seconds(30));
  // Over a channel made by Connect (common/channel.h): tokens, TLS.
  explicit Client(std::shared_ptr<grpc::Channel> channel,
                  std::chrono::milliseconds deadline = std::chrono::seconds(30));

  absl::StatusOr<v1::Job> CreateJob(const v1::CreateJobRequest& request);
  absl::StatusOr<v1::Job> GetJob(const std::string& name);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> CancelJob(const std::string& name);
  absl::Status DeleteJob(const std::string& name);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers();
  absl::StatusOr<v1::ListArtifactsResponse> ListArtifacts(const std::string& name);

  // Calls on_event for every event after after_seq until the job ends (OK),
  // on_event returns false (Cancelled), or an error that is not a dropped
  // connection. Reconnects (for up to `reconnect_for`) when the server goes
  // away, resuming after the last event seen.
  absl::Status Watch(const std::string& name, int64_t after_seq,
                     const std::function<bool(const v1::JobEvent&)>& on_event,
                     std::chrono::seconds reconnect_for = std::chrono::seconds(120));

  // Downloads one artifact to `path`. An existing shorter file is resumed
  // from its size; the result must match the artifact's sha256 (DataLoss
  // otherwise, and the file is removed).
  absl::Status Download(const std::string& name, const v1::Artifact& artifact,
                        const std::string& path);

 private:
  std::unique_ptr<grpc::ClientContext> Context() const;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::chrono::milliseconds deadline_;
};

}  // namespace segqat::client

#endif  // SEGQAT_CLIENT_CLIENT_H_
