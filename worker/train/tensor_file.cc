#include "worker/train/tensor_file.h"

#include <fcntl.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace segqat {
namespace fs = std::filesystem;

absl::Status WriteFileSynced(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", path));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool synced = done == bytes.size() && ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot write ", path, " (disk full?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status SaveTensorFile(const std::string& path,
                            const std::map<std::string, at::Tensor>& tensors) {
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, t] : tensors) dict.insert(name, t.detach().to(at::kCPU).contiguous());
  try {
    std::vector<char> bytes = torch::pickle_save(dict);
    return WriteFileSynced(path, std::string(bytes.begin(), bytes.end()));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("cannot serialize ", path, ": ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::map<std::string, at::Tensor>> ParseTensorFile(const std::string& bytes,
                                                                  const std::string& what) {
  std::map<std::string, at::Tensor> out;
  try {
    c10::IValue v = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
    if (!v.isGenericDict()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is not a dict of tensors (a state dict)"));
    }
    for (const auto& kv : v.toGenericDict()) {
      if (!kv.key().isString() || !kv.value().isTensor()) continue;
      out[kv.key().toStringRef()] = kv.value().toTensor();
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a readable tensor file: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a readable tensor file: ", e.what()));
  }
  return out;
}

absl::StatusOr<std::map<std::string, at::Tensor>> LoadTensorFile(const std::string& path) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  return ParseTensorFile(*bytes, path);
}

}  // namespace segqat
