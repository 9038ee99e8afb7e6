#include "engine/runtime/read_roots.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace segqat::runtime {
namespace fs = std::filesystem;
namespace {

// Absolute, with `..` and every symlink of the existing part resolved.
fs::path Resolve(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::path() : p;
}

bool IsUnder(const fs::path& path, const fs::path& root) {
  auto r = root.begin();
  auto p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    if (r->empty() && std::next(r) == root.end()) break;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

// The value as given, cut short: errors never echo unbounded input.
std::string Quote(const std::string& value) {
  return value.size() <= 200 ? absl::StrCat("'", value, "'")
                             : absl::StrCat("'", value.substr(0, 200), "...'");
}

}  // namespace

ReadRoots::ReadRoots(const std::vector<std::string>& roots) {
  for (const std::string& r : roots) {
    const fs::path resolved = Resolve(r);
    if (!resolved.empty()) roots_.push_back(resolved.string());
  }
  if (roots_.empty() && !roots.empty()) roots_.push_back("/nonexistent-root/");  // allow nothing
}

bool ReadRoots::Allows(const std::string& path) const {
  if (roots_.empty()) return true;
  const fs::path p = Resolve(path);
  if (p.empty()) return false;
  for (const std::string& r : roots_) {
    if (IsUnder(p, fs::path(r))) return true;
  }
  return false;
}

absl::Status ReadRoots::CheckConfig(const Config& cfg, const std::vector<std::string>& keys) const {
  if (roots_.empty()) return absl::OkStatus();
  for (const std::string& key : keys) {
    const std::string& value = cfg.Str(key);
    if (value.empty()) continue;
    if (!Allows(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": ", Quote(value),
                       " is outside the folders this worker reads jobs' data from "
                       "(--data-root)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadRoots::CheckEntries(const std::vector<data::ListEntry>& entries,
                                     const std::string& key) const {
  if (roots_.empty()) return absl::OkStatus();
  for (size_t i = 0; i < entries.size(); ++i) {
    for (const std::string* path : {&entries[i].image_path, &entries[i].label_path}) {
      if (path->empty() || Allows(*path)) continue;
      // The path is the list's bytes: named by its line, never quoted.
      return absl::InvalidArgumentError(absl::StrCat(
          key, ": entry ", i + 1,
          entries[i].origin.empty() ? std::string() : absl::StrCat(" (", entries[i].origin, ")"),
          " names a file outside the folders this worker reads jobs' data from (--data-root)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace segqat::runtime
