#include "worker/work_dir.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "absl/strings/match.h"

namespace segqat::agent {
namespace fs = std::filesystem;

void SweepStaleTemporaries(const std::string& work_dir) {
  std::error_code ec;
  int removed = 0;
  for (auto it = fs::recursive_directory_iterator(work_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it.depth() <= 1 && it->is_directory() &&
        (name.find(".tmp") != std::string::npos || absl::EndsWith(name, ".old"))) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
      it.disable_recursion_pending();
      ++removed;
    }
  }
  if (removed > 0)
    spdlog::info("removed {} half-written checkpoint folders in {}", removed, work_dir);
}

}  // namespace segqat::agent
