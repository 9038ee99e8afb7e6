#include "server/artifact_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/quote.h"
#include "common/sha256.h"

namespace segqat::server {
namespace fs = std::filesystem;

absl::Status CheckRelativeName(const std::string& name, const std::string& what) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty name"));
  const std::string quoted = QuoteForMessage(name);
  if (name.size() > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", quoted, " is longer than 1024 bytes"));
  }
  for (unsigned char c : name) {
    // NUL would cut the path short at the system call; no control characters.
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", quoted, " holds a NUL or control character"));
    }
  }
  if (name[0] == '/' || name.find('\\') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", quoted, " must be a relative path inside the job's artifacts"));
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", quoted, " escapes the artifact directory or is malformed"));
    }
  }
  return absl::OkStatus();
}

ArtifactStore::ArtifactStore(std::string root) : root_(std::move(root)) {}

std::string ArtifactStore::JobDir(const std::string& job_id) const {
  return (fs::path(root_) / "jobs" / job_id).string();
}

absl::StatusOr<std::string> ArtifactStore::UploadPath(const std::string& job_id,
                                                      const std::string& key) {
  if (auto st = CheckRelativeName(job_id, "job id"); !st.ok()) return st;
  if (key.empty() || key.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return absl::InvalidArgumentError("upload key: lowercase hex expected");
  }
  const fs::path dir = fs::path(root_) / "uploads";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir.string()));
  return (dir / absl::StrCat(job_id, ".", key, ".part")).string();
}

void ArtifactStore::RemoveUploads(const std::string& job_id) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(root_) / "uploads", ec)) {
    const std::string name = e.path().filename().string();
    if (job_id.empty() || name.rfind(job_id + ".", 0) == 0) fs::remove(e.path(), ec);
  }
}

absl::Status ArtifactStore::Verify(const std::string& job_id, const v1::Artifact& artifact) {
  auto path = Path(job_id, artifact.name());
  if (!path.ok()) return path.status();
  // The cache's key is what no write can leave unchanged: the inode and its
  // change time (which, unlike the modification time, nobody can set back).
  struct stat st {};
  if (::stat(path->c_str(), &st) != 0) {
    return absl::DataLossError(absl::StrCat(artifact.name(), ": cannot read the stored file"));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  const int64_t ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
  const uint64_t inode = static_cast<uint64_t>(st.st_ino);
  if (static_cast<int64_t>(size) != artifact.size_bytes()) {
    return absl::DataLossError(absl::StrCat(artifact.name(), ": the stored file has ", size,
                                            " bytes, ", artifact.size_bytes(), " were recorded"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = verified_.find(*path);
    if (it != verified_.end() && it->second.size == static_cast<int64_t>(size) &&
        it->second.mtime_ns == mtime_ns && it->second.ctime_ns == ctime_ns &&
        it->second.inode == inode) {
      if (it->second.sha256 == artifact.sha256()) return absl::OkStatus();
      return absl::DataLossError(
          absl::StrCat(artifact.name(), ": the stored file does not match its recorded sha256"));
    }
  }
  auto digest = FileSha256(*path);
  if (!digest.ok())
    return absl::DataLossError(absl::StrCat(artifact.name(), ": cannot read the stored file"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    verified_[*path] = Verified{static_cast<int64_t>(size), mtime_ns, ctime_ns, inode, *digest};
  }
  if (*digest != artifact.sha256()) {
    return absl::DataLossError(
        absl::StrCat(artifact.name(), ": the stored file does not match its recorded sha256"));
  }
  return absl::OkStatus();
}

absl::Status ArtifactStore::Remove(const std::string& job_id, const std::string& prefix) {
  if (auto st = CheckRelativeName(job_id, "job id"); !st.ok()) return st;
  if (!prefix.empty()) {
    if (auto st = CheckRelativeName(prefix, "artifact"); !st.ok()) return st;
  }
  const fs::path dir =
      prefix.empty() ? fs::path(JobDir(job_id)) : fs::path(JobDir(job_id)) / prefix;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot remove ", dir.string(), ": ", ec.message()));
  // Folders the removal left empty ("snapshots" once its last N is gone).
  for (fs::path up = dir.parent_path(); !prefix.empty() && up != fs::path(JobDir(job_id));
       up = up.parent_path()) {
    if (!fs::is_empty(up, ec) || ec || !fs::remove(up, ec)) break;
  }
  return absl::OkStatus();
}

absl::Status ArtifactStore::CommitUpload(const std::string& job_id, const std::string& upload_path,
                                         const std::string& name) {
  if (auto st = CheckRelativeName(job_id, "job id"); !st.ok()) return st;
  if (auto st = CheckRelativeName(name, "artifact"); !st.ok()) return st;
  const fs::path to = fs::path(JobDir(job_id)) / name;
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec || std::rename(upload_path.c_str(), to.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot store artifact ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ArtifactStore::Path(const std::string& job_id,
                                                const std::string& name) const {
  if (auto st = CheckRelativeName(job_id, "job id"); !st.ok()) return st;
  if (auto st = CheckRelativeName(name, "artifact"); !st.ok()) return st;
  const fs::path p = fs::path(JobDir(job_id)) / name;
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no artifact ", name));
  }
  return p.string();
}

absl::StatusOr<std::string> ArtifactStore::Read(const std::string& job_id, const std::string& name,
                                                int64_t offset, int64_t limit,
                                                int64_t* size) const {
  auto path = Path(job_id, name);
  if (!path.ok()) return path.status();
  std::error_code ec;
  if (!fs::is_regular_file(*path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("artifact: ", name, " is not a file"));
  }
  const int64_t total = static_cast<int64_t>(fs::file_size(*path, ec));
  *size = total;
  if (offset < 0 || offset > total) {
    return absl::OutOfRangeError(
        absl::StrCat("read_offset ", offset, " is past the end of ", name, " (", total, " bytes)"));
  }
  const int64_t n = limit > 0 ? std::min(limit, total - offset) : total - offset;
  std::string data(static_cast<size_t>(n), '\0');
  std::ifstream in(*path, std::ios::binary);
  in.seekg(offset);
  in.read(data.data(), n);
  if (in.gcount() != n) return absl::InternalError(absl::StrCat("short read of ", name));
  return data;
}

}  // namespace segqat::server
