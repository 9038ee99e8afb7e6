#include "server/worker_service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/job_name.h"
#include "common/sha256.h"
#include "job/artifact_layout.h"
#include "server/rpc_metrics.h"

namespace segqat::server {
namespace {

constexpr size_t kMaxChunk = 1 << 20;

// One key per file and lease, so a resumed call finds the bytes of the
// interrupted one.
std::string UploadKey(const v1::Lease& lease, const std::string& worker_id,
                      const std::string& artifact, const std::string& sha256) {
  Sha256 key;
  key.Update(absl::StrCat(lease.job(), "\n", lease.fencing(), "\n", lease.rank(), "\n", worker_id,
                          "\n", artifact, "\n", sha256));
  return key.HexDigest();
}

// PermissionDenied unless the caller's credentials name `worker_id`.
absl::Status CheckWorkerId(const Caller& caller, const std::string& worker_id,
                           ServerMetrics* metrics) {
  if (caller.MayUseWorkerId(worker_id)) return absl::OkStatus();
  if (metrics != nullptr) metrics->WorkerRefused("worker_id");
  return absl::PermissionDeniedError(
      absl::StrCat("worker_id: '", worker_id.substr(0, 63), "' is not an id ",
                   caller.name.empty() ? std::string("these credentials") : caller.name,
                   " may use (a worker token's NAME names its ids; local-* are segqatd's own)"));
}

// The bytes of `path` so far, into `digest`; their count, or -1.
int64_t HashExisting(const std::string& path, Sha256* digest) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::string buf(1 << 16, '\0');
  int64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) total = -1;
    if (n <= 0) break;
    digest->Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    total += n;
  }
  ::close(fd);
  return total;
}

// One upload: the header, then data appended to a temporary file; on the
// stream's end the size and digest are checked and the file is committed.
// Any failure removes the temporary file, so nothing partial is listed.
class UploadReactor : public grpc::ServerReadReactor<v1::UploadArtifactRequest> {
 public:
  UploadReactor(Scheduler* scheduler, ArtifactStore* artifacts, ServerMetrics* metrics,
                int64_t max_bytes, v1::Artifact* response, absl::StatusOr<Caller> caller,
                FileIoPool* io)
      : io_(io),
        scheduler_(scheduler),
        artifacts_(artifacts),
        metrics_(metrics),
        max_bytes_(max_bytes),
        response_(response),
        record_(Recorder(metrics, "UploadArtifact")),
        caller_(std::move(caller)) {
    if (!caller_.ok()) {
      if (absl::IsPermissionDenied(caller_.status()) && metrics_ != nullptr) {
        metrics_->WorkerRefused("role");
      }
      Finish(caller_.status());
      return;
    }
    StartRead(&request_);
  }
  ~UploadReactor() override { Abandon(); }

  // The file work (open, write, fsync, commit) runs on the I/O pool; the
  // next read starts from there. One message at a time: no two of this
  // stream's tasks overlap.
  void OnReadDone(bool ok) override {
    io_->Post([this, ok] {
      if (!ok) {  // the client half-closed: the upload is complete
        Finish(Complete());
        return;
      }
      absl::Status st = header_seen_ ? Append() : Begin();
      if (!st.ok()) {
        Finish(st);
        return;
      }
      StartRead(&request_);
    });
  }
  void OnDone() override { delete this; }

 private:
  absl::Status Begin() {
    if (!request_.has_header()) {
      return absl::InvalidArgumentError("upload: the first message must carry the header");
    }
    header_ = request_.header();
    header_seen_ = true;
    if (auto st = CheckRelativeName(header_.artifact(), "artifact"); !st.ok()) return st;
    if (header_.size_bytes() < 0 || header_.size_bytes() > max_bytes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("size_bytes: ", header_.size_bytes(), " is outside 0..", max_bytes_));
    }
    if (header_.sha256().size() != 64) {
      return absl::InvalidArgumentError("sha256: 64 lowercase hex digits expected");
    }
    if (!header_.completes_snapshot().empty() &&
        !job::SnapshotHolds(header_.completes_snapshot(), header_.artifact())) {
      return absl::InvalidArgumentError(
          absl::StrCat("completes_snapshot: ", header_.artifact(),
                       " is not a file of a snapshot folder named so (snapshots/N, interrupted)"));
    }
    if (auto st = CheckWorkerId(*caller_, header_.worker_id(), metrics_); !st.ok()) return st;
    if (auto st = scheduler_->CheckLease(header_.worker_id(), header_.lease()); !st.ok()) {
      return st;
    }
    job_id_ = JobIdOf(header_.lease().job());
    auto path = artifacts_->UploadPath(job_id_, UploadKey(header_.lease(), header_.worker_id(),
                                                          header_.artifact(), header_.sha256()));
    if (!path.ok()) return path.status();
    path_ = *path;
    if (header_.offset() < 0 || header_.offset() > header_.size_bytes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("offset: ", header_.offset(), " is outside 0..size_bytes"));
    }
    if (header_.offset() > 0) {
      // Resume: the kept bytes must be exactly the ones before offset.
      const int64_t kept = HashExisting(path_, &digest_);
      if (kept != header_.offset()) {
        keep_ = true;  // leave what is there for the right resume
        return absl::FailedPreconditionError(
            absl::StrCat("offset: the server holds ", std::max<int64_t>(kept, 0), " bytes of ",
                         header_.artifact(), ", not ", header_.offset()));
      }
      written_ = kept;
    }
    fd_ =
        ::open(path_.c_str(),
               O_WRONLY | O_CREAT | O_CLOEXEC | (header_.offset() > 0 ? O_APPEND : O_TRUNC), 0644);
    if (fd_ < 0) return absl::InternalError("upload: cannot open the temporary file");
    return absl::OkStatus();
  }

  absl::Status Append() {
    if (request_.part_case() != v1::UploadArtifactRequest::kData) {
      return absl::InvalidArgumentError("upload: only data may follow the header");
    }
    const std::string& data = request_.data();
    if (data.size() > kMaxChunk) {
      return absl::InvalidArgumentError("data: at most 1 MiB a message");
    }
    if (written_ + static_cast<int64_t>(data.size()) > header_.size_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat("data: more than the announced ",
                                                     header_.size_bytes(), " bytes of ",
                                                     header_.artifact()));
    }
    for (size_t done = 0; done < data.size();) {
      ssize_t w = ::write(fd_, data.data() + done, data.size() - done);
      if (w <= 0) {
        return absl::ResourceExhaustedError(
            absl::StrCat("upload: cannot store ", header_.artifact(), " (disk full?)"));
      }
      done += static_cast<size_t>(w);
    }
    digest_.Update(data);
    written_ += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  }

  absl::Status Complete() {
    if (!header_seen_) return absl::InvalidArgumentError("upload: no header");
    if (written_ != header_.size_bytes()) {
      keep_ = true;  // resumable from written_ (QueryUpload)
      return absl::DataLossError(absl::StrCat("upload of ", header_.artifact(), ": ", written_,
                                              " of ", header_.size_bytes(),
                                              " bytes arrived; resume from offset ", written_));
    }
    const std::string got = digest_.HexDigest();
    if (got != header_.sha256()) {
      return absl::DataLossError(absl::StrCat("upload of ", header_.artifact(),
                                              ": sha256 mismatch (sent ", header_.sha256(),
                                              ", received ", got, ")"));
    }
    const bool synced = ::fsync(fd_) == 0;
    const bool closed = ::close(fd_) == 0;
    fd_ = -1;
    if (!synced || !closed) {
      return absl::ResourceExhaustedError(
          absl::StrCat("upload: cannot store ", header_.artifact(), " (disk full?)"));
    }
    // The lease may have moved on while the bytes came in.
    if (auto st = scheduler_->CheckLease(header_.worker_id(), header_.lease()); !st.ok()) {
      return st;
    }
    if (auto st = artifacts_->CommitUpload(job_id_, path_, header_.artifact()); !st.ok()) {
      return st;
    }
    path_.clear();
    response_->set_name(header_.artifact());
    response_->set_size_bytes(written_);
    response_->set_sha256(got);
    return scheduler_->ArtifactUploaded(job_id_, *response_, header_.completes_snapshot());
  }

  // Closes the file; removes it unless the upload may be resumed.
  void Abandon() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!path_.empty() && !keep_) std::remove(path_.c_str());
    path_.clear();
  }

  void Finish(const absl::Status& st) {
    if (!st.ok()) {
      Abandon();
      if (header_seen_) {
        spdlog::warn("upload of {} refused: {}", header_.artifact().substr(0, 200),
                     std::string(st.message()));
      }
    }
    grpc::Status g = ToGrpc(st);
    record_(g);
    ServerReadReactor::Finish(g);
  }

  FileIoPool* io_;
  Scheduler* scheduler_;
  ArtifactStore* artifacts_;
  ServerMetrics* metrics_;
  int64_t max_bytes_;
  v1::Artifact* response_;
  std::function<void(const grpc::Status&)> record_;
  absl::StatusOr<Caller> caller_;
  v1::UploadArtifactRequest request_;
  v1::UploadArtifactRequest::Header header_;
  bool header_seen_ = false;
  bool keep_ = false;  // an interrupted upload keeps its bytes for a resume
  std::string job_id_, path_;
  int fd_ = -1;
  int64_t written_ = 0;
  Sha256 digest_;
};

}  // namespace

WorkerServiceImpl::WorkerServiceImpl(Scheduler* scheduler, ArtifactStore* artifacts,
                                     ServerMetrics* metrics, int64_t max_upload_bytes,
                                     const Auth* auth)
    : scheduler_(scheduler),
      artifacts_(artifacts),
      metrics_(metrics),
      max_upload_bytes_(max_upload_bytes),
      auth_(auth != nullptr ? auth : &open_) {}

grpc::ServerUnaryReactor* WorkerServiceImpl::Synchronize(grpc::CallbackServerContext* ctx,
                                                         const v1::SynchronizeRequest* req,
                                                         v1::SynchronizeResponse* resp) {
  const auto record = Recorder(metrics_, "Synchronize");
  auto caller = auth_->Check(*ctx, Rpc::kSynchronize);
  if (absl::IsPermissionDenied(caller.status()) && metrics_ != nullptr) {
    metrics_->WorkerRefused("role");
  }
  absl::Status allowed = caller.status();
  if (allowed.ok()) allowed = CheckWorkerId(*caller, req->worker_id(), metrics_);
  absl::StatusOr<v1::SynchronizeResponse> answer =
      allowed.ok() ? scheduler_->Synchronize(*req, WorkerIdentity(*caller)) : allowed;
  if (answer.ok()) *resp = *std::move(answer);
  grpc::Status g = ToGrpc(answer.status());
  record(g);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(g);
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::QueryUpload(grpc::CallbackServerContext* ctx,
                                                         const v1::QueryUploadRequest* req,
                                                         v1::QueryUploadResponse* resp) {
  const auto record = Recorder(metrics_, "QueryUpload");
  auto caller = auth_->Check(*ctx, Rpc::kQueryUpload);
  absl::Status st = caller.status();
  if (st.ok()) st = CheckWorkerId(*caller, req->worker_id(), metrics_);
  if (st.ok()) st = CheckRelativeName(req->artifact(), "artifact");
  if (st.ok()) st = scheduler_->CheckLease(req->worker_id(), req->lease());
  if (st.ok()) {
    auto path = artifacts_->UploadPath(
        JobIdOf(req->lease().job()),
        UploadKey(req->lease(), req->worker_id(), req->artifact(), req->sha256()));
    if (path.ok()) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(*path, ec);
      resp->set_received_bytes(ec ? 0 : static_cast<int64_t>(size));
    } else {
      st = path.status();
    }
  }
  grpc::Status g = ToGrpc(st);
  record(g);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(g);
  return reactor;
}

grpc::ServerReadReactor<v1::UploadArtifactRequest>* WorkerServiceImpl::UploadArtifact(
    grpc::CallbackServerContext* ctx, v1::Artifact* resp) {
  return new UploadReactor(scheduler_, artifacts_, metrics_, max_upload_bytes_, resp,
                           auth_->Check(*ctx, Rpc::kUploadArtifact), io_.get());
}

}  // namespace segqat::server
