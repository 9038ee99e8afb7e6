#include "worker/transfer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/sha256.h"
#include "job/artifact_layout.h"

namespace segqat::agent {
namespace fs = std::filesystem;
namespace {

constexpr size_t kChunk = 1 << 20;

std::unique_ptr<grpc::ClientContext> Context(std::chrono::seconds deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  return ctx;
}

// One call: the header, then the file's bytes from `offset`.
absl::StatusOr<v1::Artifact> UploadFrom(v1::WorkerService::Stub* stub,
                                        const v1::UploadArtifactRequest::Header& header,
                                        const fs::path& file, std::chrono::seconds deadline) {
  auto ctx = Context(deadline);
  v1::Artifact stored;
  auto writer = stub->UploadArtifact(ctx.get(), &stored);
  v1::UploadArtifactRequest req;
  *req.mutable_header() = header;
  bool ok = writer->Write(req);
  std::ifstream in(file, std::ios::binary);
  in.seekg(header.offset());
  std::string buf(kChunk, '\0');
  while (ok && in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    req.set_data(buf.data(), n);
    ok = writer->Write(req);
  }
  writer->WritesDone();
  auto st = FromGrpc(writer->Finish(), absl::StrCat("upload of ", header.artifact()));
  if (!st.ok()) return st;
  return stored;
}

// Uploads one file; a call that breaks off is resumed from the bytes the
// server kept (QueryUpload), a few times, before giving up.
absl::Status UploadFile(v1::WorkerService::Stub* stub, const std::string& worker_id,
                        const v1::Lease& lease, const fs::path& file, const std::string& name,
                        std::chrono::seconds deadline, const std::string& completes_snapshot) {
  auto digest = FileSha256(file.string());
  if (!digest.ok()) return digest.status();
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot read ", file.string()));
  v1::UploadArtifactRequest::Header h;
  *h.mutable_lease() = lease;
  h.set_worker_id(worker_id);
  h.set_artifact(name);
  h.set_size_bytes(static_cast<int64_t>(size));
  h.set_sha256(*digest);
  h.set_completes_snapshot(completes_snapshot);
  absl::Status last;
  Backoff retry(std::chrono::milliseconds(200), std::chrono::milliseconds(3200));
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto stored = UploadFrom(stub, h, file, deadline);
    if (stored.ok()) return absl::OkStatus();
    last = stored.status();
    // A stale lease, a bad name or a file changing under us: no retry helps.
    if (absl::IsAborted(last) || absl::IsInvalidArgument(last) ||
        (absl::IsDataLoss(last) && !absl::StrContains(last.message(), "resume from"))) {
      return last;
    }
    std::this_thread::sleep_for(retry.Next());
    v1::QueryUploadRequest q;
    *q.mutable_lease() = lease;
    q.set_worker_id(worker_id);
    q.set_artifact(name);
    q.set_sha256(*digest);
    v1::QueryUploadResponse held;
    auto qctx = Context(deadline);
    if (!stub->QueryUpload(qctx.get(), q, &held).ok()) continue;
    h.set_offset(held.received_bytes());
  }
  return last;
}

absl::Status Download(v1::JobService::Stub* stub, const std::string& job_id,
                      const v1::Artifact& artifact, const fs::path& to,
                      std::chrono::seconds deadline) {
  const fs::path tmp = to.string() + ".tmp" + std::to_string(std::random_device{}());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
    v1::ReadArtifactRequest req;
    req.set_name(absl::StrCat("jobs/", job_id));
    req.set_artifact(artifact.name());
    auto ctx = Context(deadline);
    auto reader = stub->ReadArtifact(ctx.get(), req);
    v1::ReadArtifactResponse chunk;
    while (reader->Read(&chunk)) out.write(chunk.data().data(), chunk.data().size());
    auto st = FromGrpc(reader->Finish(), absl::StrCat("jobs/", job_id, "/", artifact.name()));
    out.close();
    std::error_code ec;
    if (!st.ok() || !out) {
      fs::remove(tmp, ec);
      return st.ok() ? absl::InternalError(absl::StrCat("cannot write ", tmp.string())) : st;
    }
  }
  auto digest = FileSha256(tmp.string());
  std::error_code ec;
  if (!digest.ok() || *digest != artifact.sha256()) {
    fs::remove(tmp, ec);
    return absl::DataLossError(
        absl::StrCat("jobs/", job_id, "/", artifact.name(), ": sha256 mismatch after download"));
  }
  fs::rename(tmp, to, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", to.string()));
  return absl::OkStatus();
}

}  // namespace

absl::Status Upload(v1::WorkerService::Stub* stub, const std::string& worker_id,
                    const v1::Lease& lease, const std::string& local, const std::string& name,
                    std::chrono::seconds deadline, bool snapshot) {
  std::error_code ec;
  if (fs::is_regular_file(local, ec)) {
    return UploadFile(stub, worker_id, lease, local, name, deadline, "");
  }
  if (!fs::is_directory(local, ec)) {
    return absl::NotFoundError(absl::StrCat("nothing to upload at ", local));
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(local, ec)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    const std::string rel = fs::relative(f, local).generic_string();
    const bool last = &f == &files.back();
    if (auto st = UploadFile(stub, worker_id, lease, f, absl::StrCat(name, "/", rel), deadline,
                             snapshot && last ? name : "");
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<v1::ListArtifactsResponse> ListArtifacts(v1::JobService::Stub* stub,
                                                        const std::string& job_id,
                                                        std::chrono::seconds deadline) {
  v1::ListArtifactsRequest req;
  req.set_name(absl::StrCat("jobs/", job_id));
  v1::ListArtifactsResponse listed;
  auto ctx = Context(deadline);
  if (auto st = FromGrpc(stub->ListArtifacts(ctx.get(), req, &listed), "jobs/" + job_id);
      !st.ok()) {
    return st;
  }
  return listed;
}

}  // namespace

absl::Status Fetch(v1::JobService::Stub* stub, const std::string& job_id, const std::string& name,
                   const std::string& cache_dir, const std::string& dest,
                   std::chrono::seconds deadline) {
  auto listing = ListArtifacts(stub, job_id, deadline);
  if (!listing.ok()) return listing.status();
  const v1::ListArtifactsResponse& listed = *listing;
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  int found = 0;
  for (const v1::Artifact& a : listed.artifacts()) {
    fs::path to;
    if (a.name() == name) {
      to = dest;
    } else if (absl::StartsWith(a.name(), name + "/")) {
      to = fs::path(dest) / a.name().substr(name.size() + 1);
    } else {
      continue;
    }
    ++found;
    if (a.sha256().size() != 64 ||
        a.sha256().find_first_not_of("0123456789abcdef") != std::string::npos) {
      return absl::DataLossError(absl::StrCat("jobs/", job_id, "/", a.name(), ": bad digest"));
    }
    const fs::path cached = fs::path(cache_dir) / a.sha256();
    if (!fs::exists(cached, ec)) {
      if (auto st = Download(stub, job_id, a, cached, deadline); !st.ok()) return st;
    }
    // A copy, not a link: a job may rewrite its inputs (a resumed snapshot).
    fs::create_directories(to.parent_path(), ec);
    fs::copy_file(cached, to, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot write ", to.string()));
  }
  if (found == 0) {
    return absl::NotFoundError(absl::StrCat("jobs/", job_id, " has no artifact ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListSnapshots(v1::JobService::Stub* stub,
                                                       const std::string& job_id,
                                                       std::chrono::seconds deadline) {
  auto listed = ListArtifacts(stub, job_id, deadline);
  if (!listed.ok()) return listed.status();
  std::set<int64_t, std::greater<int64_t>> numbers;
  for (const v1::Artifact& a : listed->artifacts()) {
    if (auto n = job::SnapshotNumber(a.name())) numbers.insert(*n);
  }
  std::vector<std::string> out;
  for (int64_t n : numbers) out.push_back(job::SnapshotName(n));
  return out;
}

}  // namespace segqat::agent
