// Where a job may read on a worker: `segqat-worker serve --data-root DIR`
// (repeatable) and segqatd's `--data-root` for its embedded workers. Paths
// are resolved before they are checked (absolute, `..` and symlinks
// followed), so none of them can point outside a root; the check runs before
// any file of the job is opened, and its errors never say whether a path
// exists.
#ifndef SEGQAT_ENGINE_RUNTIME_READ_ROOTS_H_
#define SEGQAT_ENGINE_RUNTIME_READ_ROOTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/config/config.h"
#include "engine/data/sample.h"

namespace segqat::runtime {

class ReadRoots {
 public:
  // No roots: every path is allowed (a worker on one's own machine).
  ReadRoots() = default;
  explicit ReadRoots(const std::vector<std::string>& roots);

  bool restricted() const { return !roots_.empty(); }
  // Whether `path` resolves inside a root.
  bool Allows(const std::string& path) const;
  // InvalidArgument naming the key for the first of `keys` (paths the job
  // reads) whose value in `cfg` is outside every root.
  absl::Status CheckConfig(const Config& cfg, const std::vector<std::string>& keys) const;
  // InvalidArgument naming `key` (the file list) for an entry whose image or
  // label is outside every root.
  absl::Status CheckEntries(const std::vector<data::ListEntry>& entries,
                            const std::string& key) const;

 private:
  std::vector<std::string> roots_;  // resolved
};

}  // namespace segqat::runtime

#endif  // SEGQAT_ENGINE_RUNTIME_READ_ROOTS_H_
