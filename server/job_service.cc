#include "server/job_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/job_name.h"
#include "common/quote.h"
#include "server/job_state.h"
#include "server/job_validation.h"
#include "server/rpc_metrics.h"
#include "server/watch_reactor.h"

namespace segqat::server {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;
constexpr int64_t kMaxChunk = 1 << 20;

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& st,
                               const std::function<void(const grpc::Status&)>& record) {
  auto* reactor = ctx->DefaultReactor();
  grpc::Status g = ToGrpc(st);
  record(g);
  reactor->Finish(g);
  return reactor;
}

// Streams one artifact in chunks of at most 1 MiB, reading the next chunk
// only when the previous one is written.
class ReadReactor : public grpc::ServerWriteReactor<v1::ReadArtifactResponse> {
 public:
  ReadReactor(ArtifactStore* artifacts, ServerMetrics* metrics, std::string job_id,
              const v1::ReadArtifactRequest& req, const v1::Artifact& listed,
              std::shared_ptr<void> slot, StallWatchdog* watchdog, grpc::CallbackServerContext* ctx,
              FileIoPool* io)
      : io_(io),
        slot_(std::move(slot)),
        artifacts_(artifacts),
        metrics_(metrics),
        record_(Recorder(metrics, "ReadArtifact")),
        watchdog_(watchdog),
        watch_id_(watchdog->Register(ctx)),
        job_id_(std::move(job_id)),
        name_(req.artifact()),
        offset_(req.read_offset()),
        remaining_(req.read_limit()) {
    // The file work (the stored file checked against its sha256, the reads)
    // runs on the I/O pool, one task at a time for this stream.
    io_->Post([this, listed] {
      if (auto st = artifacts_->Verify(job_id_, listed); !st.ok()) {
        spdlog::error("[job {}] not serving {}: {}", job_id_, listed.name(),
                      std::string(st.message()));
        Finish(ToGrpc(st));
        return;
      }
      int64_t size = 0;
      // Validate up front so a bad offset is an error, not an empty stream.
      auto first = artifacts_->Read(job_id_, name_, offset_, 1, &size);
      if (!first.ok()) {
        Finish(ToGrpc(first.status()));
        return;
      }
      NextChunk();
    });
  }
  void OnWriteDone(bool ok) override {
    watchdog_->WriteDone(watch_id_);
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    if (metrics_ != nullptr) {
      metrics_->ArtifactBytesRead(static_cast<int64_t>(response_.data().size()));
    }
    io_->Post([this] { NextChunk(); });
  }
  void OnDone() override {
    watchdog_->Unregister(watch_id_);
    delete this;
  }

 private:
  void Finish(const grpc::Status& st) {
    record_(st);
    ServerWriteReactor::Finish(st);
  }
  void NextChunk() {
    int64_t size = 0;
    int64_t want = kMaxChunk;
    if (remaining_ > 0) want = std::min(want, remaining_);
    auto data = artifacts_->Read(job_id_, name_, offset_, want, &size);
    if (!data.ok()) {
      Finish(ToGrpc(data.status()));
      return;
    }
    if (data->empty() || (limited_ && remaining_ <= 0)) {
      Finish(grpc::Status::OK);
      return;
    }
    response_.set_data(*std::move(data));
    response_.set_offset(offset_);
    response_.set_size_bytes(size);
    offset_ += static_cast<int64_t>(response_.data().size());
    if (remaining_ > 0) {
      remaining_ -= static_cast<int64_t>(response_.data().size());
      limited_ = true;
    }
    watchdog_->WriteStarted(watch_id_);
    StartWrite(&response_);
  }
  FileIoPool* io_;
  std::shared_ptr<void> slot_;  // held while the stream is open
  ArtifactStore* artifacts_;
  ServerMetrics* metrics_;
  std::function<void(const grpc::Status&)> record_;
  StallWatchdog* watchdog_;  // cancels the stream when its client stops reading
  int64_t watch_id_;
  std::string job_id_, name_;
  int64_t offset_, remaining_;
  bool limited_ = false;
  v1::ReadArtifactResponse response_;
};

template <typename T>
class ErrorWriter : public grpc::ServerWriteReactor<T> {
 public:
  ErrorWriter(const absl::Status& st, const std::function<void(const grpc::Status&)>& record) {
    grpc::Status g = ToGrpc(st);
    record(g);
    this->Finish(g);
  }
  void OnDone() override { delete this; }
};
using ReadError = ErrorWriter<v1::ReadArtifactResponse>;

}  // namespace

JobServiceImpl::JobServiceImpl(JobStore* store, ArtifactStore* artifacts, EventBus* bus,
                               Scheduler* scheduler, ServerMetrics* metrics, const Auth* auth)
    : store_(store),
      artifacts_(artifacts),
      bus_(bus),
      scheduler_(scheduler),
      metrics_(metrics),
      auth_(auth != nullptr ? auth : &open_) {}

grpc::ServerUnaryReactor* JobServiceImpl::CreateJob(grpc::CallbackServerContext* ctx,
                                                    const v1::CreateJobRequest* req,
                                                    v1::Job* resp) {
  const auto record = Recorder(metrics_, "CreateJob");
  auto caller = auth_->Check(*ctx, Rpc::kCreateJob);
  if (!caller.ok()) return Done(ctx, caller.status(), record);
  if (req->request_id().size() > 36) {
    return Done(ctx, absl::InvalidArgumentError("request_id: at most 36 characters"), record);
  }
  if (auto st = ValidateCreateJob(*req, caller->name, limits_, store_); !st.ok()) {
    return Done(ctx, st, record);
  }
  auto created = store_->Create(*req, caller->name);
  if (!created.ok()) return Done(ctx, created.status(), record);
  *resp = created->first;
  if (created->second && metrics_ != nullptr) metrics_->JobCreated(req->spec().kind());
  return Done(ctx, absl::OkStatus(), record);
}

grpc::ServerUnaryReactor* JobServiceImpl::GetJob(grpc::CallbackServerContext* ctx,
                                                 const v1::GetJobRequest* req, v1::Job* resp) {
  const auto record = Recorder(metrics_, "GetJob");
  if (auto caller = auth_->Check(*ctx, Rpc::kGetJob); !caller.ok()) {
    return Done(ctx, caller.status(), record);
  }
  auto id = ParseJobName(req->name());
  if (!id.ok()) return Done(ctx, id.status(), record);
  auto job = store_->Get(*id);
  if (job.ok()) *resp = *std::move(job);
  return Done(ctx, job.status(), record);
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobs(grpc::CallbackServerContext* ctx,
                                                   const v1::ListJobsRequest* req,
                                                   v1::ListJobsResponse* resp) {
  const auto record = Recorder(metrics_, "ListJobs");
  if (auto caller = auth_->Check(*ctx, Rpc::kListJobs); !caller.ok()) {
    return Done(ctx, caller.status(), record);
  }
  if (req->page_size() < 0) {
    return Done(ctx,
                absl::InvalidArgumentError(
                    absl::StrCat("page_size: must not be negative, got ", req->page_size())),
                record);
  }
  if (!v1::JobState_IsValid(req->state()) || !v1::JobKind_IsValid(req->kind())) {
    return Done(ctx,
                absl::InvalidArgumentError(absl::StrCat(
                    !v1::JobState_IsValid(req->state()) ? "state" : "kind", ": unknown value ",
                    !v1::JobState_IsValid(req->state()) ? static_cast<int>(req->state())
                                                        : static_cast<int>(req->kind()))),
                record);
  }
  const int size =
      req->page_size() == 0 ? kDefaultPageSize : std::min(req->page_size(), kMaxPageSize);
  auto page = store_->List(*req, size);
  if (page.ok()) *resp = *std::move(page);
  return Done(ctx, page.status(), record);
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelJob(grpc::CallbackServerContext* ctx,
                                                    const v1::CancelJobRequest* req,
                                                    v1::Job* resp) {
  const auto record = Recorder(metrics_, "CancelJob");
  auto caller = auth_->Check(*ctx, Rpc::kCancelJob);
  if (!caller.ok()) return Done(ctx, caller.status(), record);
  auto id = ParseJobName(req->name());
  if (!id.ok()) return Done(ctx, id.status(), record);
  if (auto job = store_->Get(*id); !job.ok()) {
    return Done(ctx, job.status(), record);
  } else if (!caller->MayChange(job->owner())) {
    return Done(ctx,
                absl::PermissionDeniedError(
                    absl::StrCat("CancelJob: ", req->name(), " belongs to another caller (",
                                 caller->name, " may cancel only its own jobs)")),
                record);
  }
  auto job = scheduler_->Cancel(*id);
  if (job.ok()) *resp = *std::move(job);
  return Done(ctx, job.status(), record);
}

grpc::ServerUnaryReactor* JobServiceImpl::DeleteJob(grpc::CallbackServerContext* ctx,
                                                    const v1::DeleteJobRequest* req,
                                                    v1::DeleteJobResponse*) {
  const auto record = Recorder(metrics_, "DeleteJob");
  auto caller = auth_->Check(*ctx, Rpc::kDeleteJob);
  if (!caller.ok()) return Done(ctx, caller.status(), record);
  auto id = ParseJobName(req->name());
  if (!id.ok()) return Done(ctx, id.status(), record);
  auto job = store_->Get(*id);
  if (!job.ok()) return Done(ctx, job.status(), record);
  if (!caller->MayChange(job->owner())) {
    return Done(ctx,
                absl::PermissionDeniedError(
                    absl::StrCat("DeleteJob: ", req->name(), " belongs to another caller (",
                                 caller->name, " may delete only its own jobs)")),
                record);
  }
  // The rows first: once they are gone nothing lists the files.
  if (auto st = store_->Delete(*id); !st.ok()) return Done(ctx, st, record);
  artifacts_->RemoveUploads(*id);
  absl::Status removed = artifacts_->Remove(*id, "");
  if (!removed.ok()) spdlog::warn("[job {}] deleted, but {}", *id, removed.ToString());
  spdlog::info("[job {}] deleted by {}", *id, caller->name.empty() ? "a client" : caller->name);
  bus_->Notify(*id);
  return Done(ctx, absl::OkStatus(), record);
}

grpc::ServerWriteReactor<v1::JobEvent>* JobServiceImpl::WatchJob(grpc::CallbackServerContext* ctx,
                                                                 const v1::WatchJobRequest* req) {
  if (auto caller = auth_->Check(*ctx, Rpc::kWatchJob); !caller.ok()) {
    return new ErrorWriter<v1::JobEvent>(caller.status(), Recorder(metrics_, "WatchJob"));
  }
  auto slot = watch_slots_->Acquire(ctx->peer());
  if (!slot.ok())
    return new ErrorWriter<v1::JobEvent>(slot.status(), Recorder(metrics_, "WatchJob"));
  return new WatchReactor(store_, bus_, *req, Recorder(metrics_, "WatchJob"), *std::move(slot));
}

absl::Status JobServiceImpl::MayRead(const Caller& caller, const std::string& job_id,
                                     const char* rpc) {
  if (caller.role != Role::kWorker) return absl::OkStatus();
  if (scheduler_ != nullptr && scheduler_->MayRead(WorkerIdentity(caller), job_id)) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(rpc, ": ", caller.name, " (role worker) holds no job that reads jobs/", job_id));
}

grpc::ServerUnaryReactor* JobServiceImpl::ListArtifacts(grpc::CallbackServerContext* ctx,
                                                        const v1::ListArtifactsRequest* req,
                                                        v1::ListArtifactsResponse* resp) {
  const auto record = Recorder(metrics_, "ListArtifacts");
  auto caller = auth_->Check(*ctx, Rpc::kListArtifacts);
  if (!caller.ok()) return Done(ctx, caller.status(), record);
  auto id = ParseJobName(req->name());
  if (!id.ok()) return Done(ctx, id.status(), record);
  if (auto st = MayRead(*caller, *id, "ListArtifacts"); !st.ok()) return Done(ctx, st, record);
  auto job = store_->Get(*id);
  if (!job.ok()) return Done(ctx, job.status(), record);
  for (const auto& a : job->artifacts()) *resp->add_artifacts() = a;
  return Done(ctx, absl::OkStatus(), record);
}

grpc::ServerWriteReactor<v1::ReadArtifactResponse>* JobServiceImpl::ReadArtifact(
    grpc::CallbackServerContext* ctx, const v1::ReadArtifactRequest* req) {
  const auto record = Recorder(metrics_, "ReadArtifact");
  auto caller = auth_->Check(*ctx, Rpc::kReadArtifact);
  if (!caller.ok()) return new ReadError(caller.status(), record);
  auto id = ParseJobName(req->name());
  if (!id.ok()) return new ReadError(id.status(), record);
  if (auto st = MayRead(*caller, *id, "ReadArtifact"); !st.ok()) return new ReadError(st, record);
  if (auto st = CheckRelativeName(req->artifact(), "artifact"); !st.ok())
    return new ReadError(st, record);
  if (req->read_offset() < 0 || req->read_limit() < 0) {
    return new ReadError(absl::InvalidArgumentError("read_offset and read_limit must be >= 0"),
                         record);
  }
  auto job = store_->Get(*id);
  if (!job.ok()) return new ReadError(job.status(), record);
  const v1::Artifact* listed = nullptr;
  for (const auto& a : job->artifacts()) {
    if (a.name() == req->artifact()) listed = &a;
  }
  if (listed == nullptr) {
    return new ReadError(
        absl::NotFoundError(absl::StrCat("job ", *id, " has no artifact ", req->artifact())),
        record);
  }
  const bool worker = caller->role == Role::kWorker;
  auto slot =
      (worker ? worker_read_slots_ : read_slots_)->Acquire(ctx->peer(), WorkerIdentity(*caller));
  if (!slot.ok()) return new ReadError(slot.status(), record);
  return new ReadReactor(artifacts_, metrics_, *id, *req, *listed, *std::move(slot),
                         read_watchdog_.get(), ctx, io_.get());
}

grpc::ServerUnaryReactor* JobServiceImpl::ListWorkers(grpc::CallbackServerContext* ctx,
                                                      const v1::ListWorkersRequest*,
                                                      v1::ListWorkersResponse* resp) {
  const auto record = Recorder(metrics_, "ListWorkers");
  if (auto caller = auth_->Check(*ctx, Rpc::kListWorkers); !caller.ok()) {
    return Done(ctx, caller.status(), record);
  }
  for (v1::Worker& w : scheduler_->Workers()) *resp->add_workers() = std::move(w);
  return Done(ctx, absl::OkStatus(), record);
}

}  // namespace segqat::server
