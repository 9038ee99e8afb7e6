// The gRPC JobService (proto/segqat/v1/jobs.proto) on the callback API.
// Handlers validate the request, call the core (JobStore, Scheduler,
// ArtifactStore), and convert the status in one place; streams are
// reactors that never block a gRPC thread on a job.
#ifndef SEGQAT_SERVER_JOB_SERVICE_H_
#define SEGQAT_SERVER_JOB_SERVICE_H_

#include <algorithm>

#include "segqat/v1/jobs.grpc.pb.h"
#include "server/artifact_store.h"
#include "server/auth.h"
#include "server/event_bus.h"
#include "server/file_io_pool.h"
#include "server/job_store.h"
#include "server/job_validation.h"
#include "server/scheduler.h"
#include "server/server_metrics.h"
#include "server/stall_watchdog.h"
#include "server/stream_slots.h"

namespace segqat::server {

class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  // metrics may be null; auth null: every caller is an anonymous admin.
  JobServiceImpl(JobStore* store, ArtifactStore* artifacts, EventBus* bus, Scheduler* scheduler,
                 ServerMetrics* metrics = nullptr, const Auth* auth = nullptr);

  void SetLimits(const JobLimits& limits) { limits_ = limits; }
  // Open WatchJob streams per connection, and ReadArtifact streams in all
  // (each holds about 2 MiB of buffers): RESOURCE_EXHAUSTED past them.
  // One viewer's connection may hold an eighth of the downloads (a worker's a
  // quarter) and one token a quarter; workers' fetches of their jobs' inputs have slots of their
  // own, which no viewer can take. A download whose client has read nothing for `stall_timeout` is
  // cancelled and gives its slot back (0: never).
  void SetStreamLimits(int watchers_per_connection, int downloads,
                       std::chrono::milliseconds stall_timeout = std::chrono::seconds(60)) {
    watch_slots_ = StreamSlots::Create(1 << 20, watchers_per_connection, "WatchJob");
    read_slots_ = StreamSlots::Create(downloads, std::max(1, downloads / 8), "ReadArtifact",
                                      std::max(1, downloads / 4));
    worker_read_slots_ = StreamSlots::Create(downloads, std::max(1, downloads / 4),
                                             "ReadArtifact (workers)", std::max(1, downloads / 4));
    read_watchdog_ = std::make_unique<StallWatchdog>(stall_timeout, "ReadArtifact");
  }

  grpc::ServerUnaryReactor* CreateJob(grpc::CallbackServerContext* ctx,
                                      const v1::CreateJobRequest* req, v1::Job* resp) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const v1::GetJobRequest* req,
                                   v1::Job* resp) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* req,
                                     v1::ListJobsResponse* resp) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* req, v1::Job* resp) override;
  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* ctx,
                                      const v1::DeleteJobRequest* req,
                                      v1::DeleteJobResponse* resp) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* req) override;
  grpc::ServerUnaryReactor* ListArtifacts(grpc::CallbackServerContext* ctx,
                                          const v1::ListArtifactsRequest* req,
                                          v1::ListArtifactsResponse* resp) override;
  grpc::ServerWriteReactor<v1::ReadArtifactResponse>* ReadArtifact(
      grpc::CallbackServerContext* ctx, const v1::ReadArtifactRequest* req) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx,
                                        const v1::ListWorkersRequest* req,
                                        v1::ListWorkersResponse* resp) override;

 private:
  // A worker's credentials read only what its leases need (Scheduler::MayRead);
  // every other role reads every job.
  absl::Status MayRead(const Caller& caller, const std::string& job_id, const char* rpc);

  JobStore* store_;
  ArtifactStore* artifacts_;
  EventBus* bus_;
  Scheduler* scheduler_;
  ServerMetrics* metrics_;
  JobLimits limits_;
  std::shared_ptr<StreamSlots> watch_slots_ = StreamSlots::Create(1 << 20, 32, "WatchJob");
  std::shared_ptr<StreamSlots> read_slots_ = StreamSlots::Create(64, 8, "ReadArtifact", 16);
  std::shared_ptr<StreamSlots> worker_read_slots_ =
      StreamSlots::Create(64, 16, "ReadArtifact (workers)", 16);
  std::unique_ptr<StallWatchdog> read_watchdog_ =
      std::make_unique<StallWatchdog>(std::chrono::seconds(60), "ReadArtifact");
  Auth open_;  // used when no Auth is given
  const Auth* auth_;
  // Downloads' reads and first sha256 checks (server/file_io_pool.h); last,
  // so it is joined first.
  std::unique_ptr<FileIoPool> io_ = std::make_unique<FileIoPool>(4);
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_JOB_SERVICE_H_
