#include "worker/work_dir.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

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

bool IsEpochSnapshot(const std::string& name) {
  return !name.empty() && name.find_first_not_of("0123456789") == std::string::npos;
}

void KeepNewestLocalSnapshots(const std::string& work_dir, size_t keep) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(work_dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t n = 0;
    if (e.is_directory() && IsEpochSnapshot(name) && absl::SimpleAtoi(name, &n)) {
      found.emplace_back(n, e.path());
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& x, const auto& y) { return x.first > y.first; });
  for (size_t i = keep; i < found.size(); ++i) fs::remove_all(found[i].second, ec);
}

}  // namespace segqat::agent
