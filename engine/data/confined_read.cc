#include "engine/data/confined_read.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace segqat::data {
namespace {

std::mutex g_mu;
std::vector<std::string>* g_roots = new std::vector<std::string>();  // resolved; never freed

std::vector<std::string> Roots() {
  std::lock_guard<std::mutex> lock(g_mu);
  return *g_roots;
}

// Closes a descriptor when it goes.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// `rel` (no links in it, as realpath made it) beneath `root_fd`, one
// component at a time, none followed if it is a link.
int WalkNoFollow(int root_fd, const std::string& rel) {
  std::vector<std::string> parts = absl::StrSplit(rel, '/', absl::SkipEmpty());
  int dir = ::dup(root_fd);
  for (size_t i = 0; dir >= 0 && i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    if (parts[i] == "..") {
      ::close(dir);
      errno = EXDEV;
      return -1;
    }
    const int next = ::openat(dir, parts[i].c_str(),
                              O_NOFOLLOW | O_CLOEXEC | (last ? O_RDONLY : O_PATH | O_DIRECTORY));
    const int saved = errno;
    ::close(dir);
    errno = saved;
    dir = next;
  }
  return dir;
}

int OpenBeneath(const std::string& root, const std::string& rel) {
  Fd root_fd{::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (root_fd.fd < 0) return -1;
  struct open_how how {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const int fd =
      static_cast<int>(::syscall(SYS_openat2, root_fd.fd, rel.c_str(), &how, sizeof how));
  if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
  return WalkNoFollow(root_fd.fd, rel);  // a kernel (or seccomp filter) without openat2
}

}  // namespace

void ConfineReads(const std::vector<std::string>& roots) {
  std::vector<std::string> resolved;
  for (const std::string& r : roots) {
    char* real = ::realpath(r.c_str(), nullptr);
    if (real == nullptr) continue;
    resolved.emplace_back(real);
    std::free(real);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  *g_roots = std::move(resolved);
}

bool ReadsConfined() {
  std::lock_guard<std::mutex> lock(g_mu);
  return !g_roots->empty();
}

absl::StatusOr<std::string> ReadJobFile(const std::string& path, const std::string& shown,
                                        int64_t max_bytes) {
  const std::vector<std::string> roots = Roots();
  Fd file;
  if (roots.empty()) {
    file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file.fd < 0) {
      if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(shown, " does not exist"));
      return absl::InvalidArgumentError(absl::StrCat(shown, " cannot be read"));
    }
  } else {
    const auto outside = [&] {
      return absl::PermissionDeniedError(absl::StrCat(
          shown, " is outside the folders this worker reads jobs' data from (--data-root)"));
    };
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) {
      // Missing: said so only beneath a root. Whether a path outside the
      // roots exists is not for the job to learn.
      const int err = errno;
      std::error_code ec;
      const std::string lexical = std::filesystem::absolute(path, ec).lexically_normal().string();
      for (const std::string& root : roots) {
        if (err == ENOENT && absl::StartsWith(lexical, root + "/")) {
          return absl::NotFoundError(absl::StrCat(shown, " does not exist"));
        }
      }
      return outside();
    }
    const std::string resolved(real);
    std::free(real);
    for (const std::string& root : roots) {
      if (!absl::StartsWith(resolved, root + "/")) continue;
      file.fd = OpenBeneath(root, resolved.substr(root.size() + 1));
      break;
    }
    if (file.fd < 0) {
      if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(shown, " does not exist"));
      return outside();  // not beneath a root, or a component became a link
    }
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(shown, " is not a regular file"));
  }
  if (st.st_size > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(shown, " has ", st.st_size, " bytes, more than the ", max_bytes, " allowed"));
  }
  std::string bytes;
  bytes.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(file.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InvalidArgumentError(absl::StrCat(shown, " cannot be read"));
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(bytes.size()) > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(shown, " grew past ", max_bytes, " bytes"));
    }
  }
  return bytes;
}

}  // namespace segqat::data
