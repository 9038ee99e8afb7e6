// Who may call what. `segqatd --auth-tokens FILE` reads lines of
// `TOKEN ROLE [NAME]` ('#' starts a comment); a caller presents its token as
// `authorization: Bearer TOKEN` metadata on every RPC. Roles:
//   viewer     GetJob, ListJobs, WatchJob, ListArtifacts, ReadArtifact, ListWorkers
//   submitter  a viewer's, plus CreateJob and CancelJob on the jobs it created
//   worker     the WorkerService under the worker ids its NAME allows, plus
//              ListArtifacts and ReadArtifact of the jobs it holds and their
//              inputs (the scheduler decides which)
//   admin      every job RPC on every job; never the WorkerService
// A worker token's NAME is the worker id it may use ("gpu-a": gpu-a and
// gpu-a-*, e.g. the per-GPU gpu-a-cuda0) or, ending in '*', a prefix
// ("segqat-worker-*"); the ids local-* belong to segqatd's embedded workers.
// Without a token file every caller is an anonymous admin (loopback use),
// but the embedded workers' ids still need their internal token.
// Tokens are kept only as their sha256.
#ifndef SEGQAT_SERVER_AUTH_H_
#define SEGQAT_SERVER_AUTH_H_

#include <grpcpp/server_context.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace segqat::server {

enum class Role { kViewer, kSubmitter, kWorker, kAdmin };

enum class Rpc {
  kCreateJob,
  kGetJob,
  kListJobs,
  kCancelJob,
  kDeleteJob,
  kWatchJob,
  kListArtifacts,
  kReadArtifact,
  kListWorkers,
  kSynchronize,
  kUploadArtifact,
  kQueryUpload,
};

struct Caller {
  std::string name;  // owner of the jobs it creates; "" when auth is off
  Role role = Role::kAdmin;
  bool internal = false;  // segqatd's own embedded workers
  // Whether it may act on a job owned by `owner` (cancel, delete).
  bool MayChange(const std::string& owner) const {
    return role == Role::kAdmin || (role == Role::kSubmitter && owner == name);
  }
  // Whether it may report and upload as worker `worker_id`.
  bool MayUseWorkerId(const std::string& worker_id) const;
};

// The identity a scheduler binds worker ids to: the token's name, a
// reserved one for the embedded workers, "" when auth is off.
std::string WorkerIdentity(const Caller& caller);

// The prefix of the embedded workers' ids (local-0, local-1, ...).
inline constexpr char kEmbeddedWorkerPrefix[] = "local-";

class Auth {
 public:
  // Every caller is an anonymous admin.
  Auth() = default;
  // FailedPrecondition when the file is readable by others than its owner
  // and group, or writable by others than its owner; InvalidArgument naming
  // the line for a bad one (the token itself is never quoted).
  static absl::StatusOr<Auth> FromFile(const std::string& path);

  bool enabled() const { return enabled_; }
  // Adds a token (e.g. the embedded workers' own, internal); enables auth.
  void Add(const std::string& token, Role role, const std::string& name, bool internal = false);
  // The embedded workers' token: recognised whether or not auth is enabled
  // (it alone may use the local-* worker ids); does not enable auth.
  void AddInternal(const std::string& token);
  // Worker RPCs (Synchronize, UploadArtifact, QueryUpload) then need a
  // verified client certificate (mutual TLS), except from internal callers.
  void RequireWorkerCertificates() { worker_certificates_ = true; }
  // The caller of `rpc`: Unauthenticated without a known token,
  // PermissionDenied when its role may not make the call.
  absl::StatusOr<Caller> Check(const grpc::ServerContextBase& ctx, Rpc rpc) const;
  // Whether an HTTP Authorization header ("Bearer TOKEN") holds a known token
  // (of any role): /metrics with segqatd --metrics-auth.
  bool KnowsBearer(absl::string_view authorization) const;

 private:
  bool enabled_ = false;
  bool worker_certificates_ = false;
  std::map<std::string, Caller> by_digest_;  // sha256(token) -> caller
  std::string internal_digest_;
};

const char* RoleName(Role role);
const char* RpcName(Rpc rpc);
// A random token (32 bytes from the system's CSPRNG, hex).
std::string RandomToken();

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_AUTH_H_
