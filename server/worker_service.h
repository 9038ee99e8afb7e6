// The gRPC WorkerService (proto/segqat/v1/workers.proto): workers' reports go
// to the Scheduler; uploads are written to a temporary file, checked
// against the header's size and sha256, and only then renamed into place
// and listed on the job. An upload cut short keeps its bytes under the
// lease, so the worker resumes it from QueryUpload's offset.
#ifndef SEGQAT_SERVER_WORKER_SERVICE_H_
#define SEGQAT_SERVER_WORKER_SERVICE_H_

#include "segqat/v1/workers.grpc.pb.h"
#include "server/artifact_store.h"
#include "server/auth.h"
#include "server/file_io_pool.h"
#include "server/scheduler.h"
#include "server/server_metrics.h"

namespace segqat::server {

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  // metrics may be null. `max_upload_bytes` bounds one artifact. auth null:
  // every caller is an anonymous admin.
  WorkerServiceImpl(Scheduler* scheduler, ArtifactStore* artifacts, ServerMetrics* metrics,
                    int64_t max_upload_bytes = int64_t{8} << 30, const Auth* auth = nullptr);

  grpc::ServerUnaryReactor* Synchronize(grpc::CallbackServerContext* ctx,
                                        const v1::SynchronizeRequest* req,
                                        v1::SynchronizeResponse* resp) override;
  grpc::ServerReadReactor<v1::UploadArtifactRequest>* UploadArtifact(
      grpc::CallbackServerContext* ctx, v1::Artifact* resp) override;
  grpc::ServerUnaryReactor* QueryUpload(grpc::CallbackServerContext* ctx,
                                        const v1::QueryUploadRequest* req,
                                        v1::QueryUploadResponse* resp) override;

 private:
  Scheduler* scheduler_;
  ArtifactStore* artifacts_;
  ServerMetrics* metrics_;
  int64_t max_upload_bytes_;
  Auth open_;
  const Auth* auth_;
  // Uploads' writes, fsync and commit (server/file_io_pool.h); last, so it
  // is joined first.
  std::unique_ptr<FileIoPool> io_ = std::make_unique<FileIoPool>(4);
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_WORKER_SERVICE_H_
