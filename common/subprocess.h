// Running a helper program (the Python scripts segqat compiles in: the
// report's plots, ONNX Runtime's half of the layer diff) with its output in
// files, so that a failure can quote it.
#ifndef SEGQAT_COMMON_SUBPROCESS_H_
#define SEGQAT_COMMON_SUBPROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace segqat {

// Runs argv[0] (looked up in PATH) with argv, stdout to `stdout_path` and
// stderr to `stderr_path` (the same path: both in one file), and waits.
// Returns its exit code; NotFound when it cannot be started, Internal when
// a signal ended it.
absl::StatusOr<int> RunProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                               const std::string& stderr_path);

// A private directory under the system's temp directory for a helper's
// inputs and outputs, removed with everything in it when destroyed.
class ScratchDir {
 public:
  // `prefix` names it ("segqat-report"); Internal when it cannot be made.
  static absl::StatusOr<std::unique_ptr<ScratchDir>> Create(const std::string& prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The last `max_bytes` of a file (a failed helper's log, for a message).
std::string FileTail(const std::string& path, size_t max_bytes = 600);

}  // namespace segqat

#endif  // SEGQAT_COMMON_SUBPROCESS_H_
