// The names of a job's uploaded snapshots, "snapshots/N" (N the epoch), as
// the worker uploads them and segqatd lists and prunes them.
#ifndef SEGQAT_COMMON_SNAPSHOT_NAME_H_
#define SEGQAT_COMMON_SNAPSHOT_NAME_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace segqat {

inline std::string SnapshotName(int64_t n) { return absl::StrCat("snapshots/", n); }

// N for an artifact "snapshots/N" or below it ("snapshots/N/model.pt").
inline std::optional<int64_t> SnapshotNumber(absl::string_view artifact) {
  const std::vector<absl::string_view> parts = absl::StrSplit(artifact, '/');
  int64_t n = 0;
  if (parts.size() >= 2 && parts[0] == "snapshots" && absl::SimpleAtoi(parts[1], &n)) return n;
  return std::nullopt;
}

}  // namespace segqat

#endif  // SEGQAT_COMMON_SNAPSHOT_NAME_H_
