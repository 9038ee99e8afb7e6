#include "server/auth.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"

namespace segqat::server {
namespace {

std::string Digest(absl::string_view token) {
  Sha256 h;
  h.Update(std::string_view(token.data(), token.size()));
  return h.HexDigest();
}

bool Allowed(Role role, Rpc rpc) {
  switch (role) {
    case Role::kAdmin:  // manages jobs, never speaks as a worker
      return rpc != Rpc::kSynchronize && rpc != Rpc::kUploadArtifact && rpc != Rpc::kQueryUpload;
    case Role::kWorker:  // reads only what its leases need (Scheduler::MayRead)
      return rpc == Rpc::kSynchronize || rpc == Rpc::kUploadArtifact || rpc == Rpc::kQueryUpload ||
             rpc == Rpc::kReadArtifact || rpc == Rpc::kListArtifacts;
    case Role::kSubmitter:
      if (rpc == Rpc::kCreateJob || rpc == Rpc::kCancelJob || rpc == Rpc::kDeleteJob) {
        return true;
      }
      [[fallthrough]];
    case Role::kViewer:
      return rpc == Rpc::kGetJob || rpc == Rpc::kListJobs || rpc == Rpc::kWatchJob ||
             rpc == Rpc::kListArtifacts || rpc == Rpc::kReadArtifact || rpc == Rpc::kListWorkers;
  }
  return false;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kSubmitter:
      return "submitter";
    case Role::kWorker:
      return "worker";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

const char* RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kCreateJob:
      return "CreateJob";
    case Rpc::kGetJob:
      return "GetJob";
    case Rpc::kListJobs:
      return "ListJobs";
    case Rpc::kCancelJob:
      return "CancelJob";
    case Rpc::kDeleteJob:
      return "DeleteJob";
    case Rpc::kWatchJob:
      return "WatchJob";
    case Rpc::kListArtifacts:
      return "ListArtifacts";
    case Rpc::kReadArtifact:
      return "ReadArtifact";
    case Rpc::kListWorkers:
      return "ListWorkers";
    case Rpc::kSynchronize:
      return "Synchronize";
    case Rpc::kUploadArtifact:
      return "UploadArtifact";
    case Rpc::kQueryUpload:
      return "QueryUpload";
  }
  return "?";
}

std::string RandomToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no entropy: nothing is safe
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

bool Caller::MayUseWorkerId(const std::string& worker_id) const {
  const bool embedded = absl::StartsWith(worker_id, kEmbeddedWorkerPrefix);
  if (internal) return embedded;
  if (embedded) return false;
  if (role != Role::kWorker) return role == Role::kAdmin && name.empty();  // auth off
  if (absl::EndsWith(name, "*")) {
    return absl::StartsWith(worker_id, absl::string_view(name).substr(0, name.size() - 1));
  }
  return worker_id == name || absl::StartsWith(worker_id, name + "-");
}

std::string WorkerIdentity(const Caller& caller) {
  return caller.internal ? std::string("(embedded)") : caller.name;
}

absl::StatusOr<Auth> Auth::FromFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("--auth-tokens: cannot read ", path));
  }
  if ((st.st_mode & S_IROTH) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--auth-tokens: ", path, " is readable by every user; chmod o-r it (0600 or 0640)"));
  }
  if ((st.st_mode & (S_IWOTH | S_IWGRP)) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--auth-tokens: ", path,
                     " is writable by others than its owner (anyone could add an "
                     "admin); chmod go-w it (0600 or 0640)"));
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--auth-tokens: cannot read ", path));
  Auth auth;
  auth.enabled_ = true;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || absl::StartsWith(text, "#")) continue;
    std::vector<std::string> parts =
        absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth-tokens: ", path, " line ", number, ": ", why));
    };
    if (parts.size() < 2 || parts.size() > 3) return bad("expected TOKEN ROLE [NAME]");
    if (parts[0].size() < 16) return bad("the token is shorter than 16 characters");
    Role role;
    if (parts[1] == "viewer") {
      role = Role::kViewer;
    } else if (parts[1] == "submitter") {
      role = Role::kSubmitter;
    } else if (parts[1] == "worker") {
      role = Role::kWorker;
    } else if (parts[1] == "admin") {
      role = Role::kAdmin;
    } else {
      return bad(absl::StrCat("role '", parts[1].substr(0, 32),
                              "' is not one of viewer, submitter, worker, admin"));
    }
    const std::string digest = Digest(parts[0]);
    if (auth.by_digest_.count(digest) > 0) return bad("the token is listed twice");
    const std::string name =
        parts.size() == 3 ? parts[2] : absl::StrCat(parts[1], "-", digest.substr(0, 8));
    if (role == Role::kWorker) {
      const absl::string_view stem =
          absl::EndsWith(name, "*") ? absl::string_view(name).substr(0, name.size() - 1) : name;
      if (stem.empty() || stem.find('*') != absl::string_view::npos ||
          absl::StartsWith(name, kEmbeddedWorkerPrefix)) {
        return bad(absl::StrCat("worker NAME '", name.substr(0, 63),
                                "' must be a worker id or a prefix ending in '*' (not local-*)"));
      }
    }
    auth.by_digest_[digest] = Caller{name, role};
  }
  if (auth.by_digest_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--auth-tokens: ", path, " lists no token"));
  }
  return auth;
}

void Auth::Add(const std::string& token, Role role, const std::string& name, bool internal) {
  enabled_ = true;
  by_digest_[Digest(token)] = Caller{name, role, internal};
}

void Auth::AddInternal(const std::string& token) {
  internal_digest_ = Digest(token);
  by_digest_[internal_digest_] = Caller{"local-workers", Role::kWorker, /*internal=*/true};
}

namespace {

bool IsWorkerRpc(Rpc rpc) {
  return rpc == Rpc::kSynchronize || rpc == Rpc::kUploadArtifact || rpc == Rpc::kQueryUpload;
}

absl::Status CheckCertificate(const grpc::ServerContextBase& ctx, Rpc rpc) {
  auto peer = ctx.auth_context();
  if (peer == nullptr || !peer->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError(absl::StrCat(
        RpcName(rpc), ": worker calls need a client certificate signed by --tls-client-ca"));
  }
  return absl::OkStatus();
}

}  // namespace

bool Auth::KnowsBearer(absl::string_view authorization) const {
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(authorization, kBearer)) return false;
  return by_digest_.count(Digest(authorization.substr(kBearer.size()))) > 0;
}

absl::StatusOr<Caller> Auth::Check(const grpc::ServerContextBase& ctx, Rpc rpc) const {
  const auto& md = ctx.client_metadata();
  if (!enabled_) {
    if (auto it = md.find("authorization"); it != md.end() && !internal_digest_.empty()) {
      const absl::string_view value(it->second.data(), it->second.size());
      if (absl::StartsWith(value, "Bearer ") && Digest(value.substr(7)) == internal_digest_) {
        return by_digest_.at(internal_digest_);
      }
    }
    if (worker_certificates_ && IsWorkerRpc(rpc)) {
      if (auto st = CheckCertificate(ctx, rpc); !st.ok()) return st;
    }
    return Caller{};
  }
  auto it = md.find("authorization");
  if (it == md.end()) {
    return absl::UnauthenticatedError(
        "no token: send 'authorization: Bearer TOKEN' (segqat: SEGQAT_TOKEN or --token-file)");
  }
  const absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(value, kBearer)) {
    return absl::UnauthenticatedError("authorization: expected 'Bearer TOKEN'");
  }
  auto caller = by_digest_.find(Digest(value.substr(kBearer.size())));
  if (caller == by_digest_.end()) return absl::UnauthenticatedError("unknown token");
  if (!Allowed(caller->second.role, rpc)) {
    return absl::PermissionDeniedError(absl::StrCat(RpcName(rpc), ": not allowed for ",
                                                    caller->second.name, " (role ",
                                                    RoleName(caller->second.role), ")"));
  }
  if (worker_certificates_ && IsWorkerRpc(rpc) && !caller->second.internal) {
    if (auto st = CheckCertificate(ctx, rpc); !st.ok()) return st;
  }
  return caller->second;
}

}  // namespace segqat::server
