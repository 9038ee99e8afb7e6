#include "client/client.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/sha256.h"

namespace segqat::client {
namespace fs = std::filesystem;

Client::Client(const std::string& target, std::chrono::milliseconds deadline)
    : Client(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()), deadline) {}

Client::Client(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds deadline)
    : channel_(std::move(channel)), stub_(v1::JobService::NewStub(channel_)), deadline_(deadline) {}

std::unique_ptr<grpc::ClientContext> Client::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline_);
  return ctx;
}

absl::StatusOr<v1::Job> Client::CreateJob(const v1::CreateJobRequest& request) {
  v1::Job job;
  auto ctx = Context();
  absl::Status st = FromGrpc(stub_->CreateJob(ctx.get(), request, &job));
  if (!st.ok()) return st;
  return job;
}

absl::StatusOr<v1::Job> Client::GetJob(const std::string& name) {
  v1::GetJobRequest req;
  req.set_name(name);
  v1::Job job;
  auto ctx = Context();
  absl::Status st = FromGrpc(stub_->GetJob(ctx.get(), req, &job));
  if (!st.ok()) return st;
  return job;
}

absl::StatusOr<v1::ListJobsResponse> Client::ListJobs(const v1::ListJobsRequest& request) {
  v1::ListJobsResponse resp;
  auto ctx = Context();
  absl::Status st = FromGrpc(stub_->ListJobs(ctx.get(), request, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::Job> Client::CancelJob(const std::string& name) {
  v1::CancelJobRequest req;
  req.set_name(name);
  v1::Job job;
  auto ctx = Context();
  absl::Status st = FromGrpc(stub_->CancelJob(ctx.get(), req, &job));
  if (!st.ok()) return st;
  return job;
}

absl::Status Client::DeleteJob(const std::string& name) {
  v1::DeleteJobRequest req;
  req.set_name(name);
  v1::DeleteJobResponse resp;
  auto ctx = Context();
  return FromGrpc(stub_->DeleteJob(ctx.get(), req, &resp));
}

absl::StatusOr<v1::ListWorkersResponse> Client::ListWorkers() {
  v1::ListWorkersResponse resp;
  auto ctx = Context();
  absl::Status st = FromGrpc(stub_->ListWorkers(ctx.get(), v1::ListWorkersRequest(), &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::ListArtifactsResponse> Client::ListArtifacts(const std::string& name) {
  v1::ListArtifactsRequest req;
  req.set_name(name);
  v1::ListArtifactsResponse resp;
  auto ctx = Context();
  absl::Status st = FromGrpc(stub_->ListArtifacts(ctx.get(), req, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::Status Client::Watch(const std::string& name, int64_t after_seq,
                           const std::function<bool(const v1::JobEvent&)>& on_event,
                           std::chrono::seconds reconnect_for) {
  auto give_up = std::chrono::steady_clock::now() + reconnect_for;
  while (true) {
    grpc::ClientContext ctx;  // a stream lasts as long as the job: no deadline
    v1::WatchJobRequest req;
    req.set_name(name);
    req.set_after_seq(after_seq);
    auto reader = stub_->WatchJob(&ctx, req);
    v1::JobEvent ev;
    while (reader->Read(&ev)) {
      after_seq = ev.seq();
      give_up = std::chrono::steady_clock::now() + reconnect_for;
      if (!on_event(ev)) {
        ctx.TryCancel();
        reader->Finish();
        return absl::CancelledError("watch stopped");
      }
    }
    grpc::Status st = reader->Finish();
    if (st.ok()) return absl::OkStatus();
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE ||
        std::chrono::steady_clock::now() > give_up) {
      return FromGrpc(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

absl::Status Client::Download(const std::string& name, const v1::Artifact& artifact,
                              const std::string& path) {
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  int64_t have = fs::exists(path, ec) ? static_cast<int64_t>(fs::file_size(path, ec)) : 0;
  if (have > artifact.size_bytes()) {
    fs::remove(path, ec);
    have = 0;
  }
  if (have < artifact.size_bytes()) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
    v1::ReadArtifactRequest req;
    req.set_name(name);
    req.set_artifact(artifact.name());
    req.set_read_offset(have);
    auto reader = stub_->ReadArtifact(&ctx, req);
    v1::ReadArtifactResponse chunk;
    while (reader->Read(&chunk)) {
      if (chunk.offset() != have) {
        ctx.TryCancel();
        reader->Finish();
        return absl::DataLossError(absl::StrCat("unexpected chunk offset ", chunk.offset()));
      }
      out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      have += static_cast<int64_t>(chunk.data().size());
    }
    out.close();
    if (auto st = FromGrpc(reader->Finish()); !st.ok()) return st;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  auto digest = FileSha256(path);
  if (!digest.ok()) return digest.status();
  if (*digest != artifact.sha256()) {
    fs::remove(path, ec);
    return absl::DataLossError(absl::StrCat(artifact.name(), ": sha256 mismatch (got ", *digest,
                                            ", want ", artifact.sha256(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace segqat::client
