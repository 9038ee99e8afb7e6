// ArtifactStore: the files jobs produce, under <root>/jobs/<id>/<name>, each
// written atomically (temporary file, fsync, rename) with its sha256, and
// read back in chunks from any offset.
//
// Names are relative paths such as "final/model.pt"; a name that is empty,
// absolute, or has a ".." or "." component is refused (InvalidArgument), so
// no request reaches outside the store. Thread-safe: methods touch only the
// filesystem and immutable state.
#ifndef SEGQAT_SERVER_ARTIFACT_STORE_H_
#define SEGQAT_SERVER_ARTIFACT_STORE_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "segqat/v1/jobs.pb.h"

namespace segqat::server {

// InvalidArgument naming `what` unless `name` is a safe relative path.
absl::Status CheckRelativeName(const std::string& name, const std::string& what);

class ArtifactStore {
 public:
  explicit ArtifactStore(std::string root);

  // The local path of an artifact (a file or a published directory prefix
  // such as "final"). NotFound when absent.
  absl::StatusOr<std::string> Path(const std::string& job_id, const std::string& name) const;

  // Up to `limit` bytes (0: to the end) from `offset`. OutOfRange when offset
  // is past the end; `size` receives the artifact's total size.
  absl::StatusOr<std::string> Read(const std::string& job_id, const std::string& name,
                                   int64_t offset, int64_t limit, int64_t* size) const;

  // Where the upload `key` (unique per file and lease; [0-9a-f]) of the
  // job's artifact collects its bytes: <root>/uploads/<job>.<key>.part, never
  // listed. The directory is created if needed.
  absl::StatusOr<std::string> UploadPath(const std::string& job_id, const std::string& key);
  // Removes the job's unfinished uploads (all jobs' with an empty job_id).
  void RemoveUploads(const std::string& job_id);
  // Renames a written and fsynced upload into place as the job's `name`.
  absl::Status CommitUpload(const std::string& job_id, const std::string& upload_path,
                            const std::string& name);

  // OK when the file on disk has the size and sha256 `artifact` records;
  // DataLoss otherwise (a truncated or corrupted file is never served). A
  // file's digest is computed once per (size, modification time).
  absl::Status Verify(const std::string& job_id, const v1::Artifact& artifact);

  // Removes the job's artifacts under `prefix` ("snapshots/3"; "" for all
  // of them) from disk.
  absl::Status Remove(const std::string& job_id, const std::string& prefix);

  const std::string& root() const { return root_; }

 private:
  std::string JobDir(const std::string& job_id) const;
  std::string root_;
  struct Verified {
    int64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    uint64_t inode;
    std::string sha256;
  };
  std::mutex mu_;
  std::map<std::string, Verified> verified_;  // path -> what it held when checked
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_ARTIFACT_STORE_H_
