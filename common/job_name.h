// A job's resource name, "jobs/ID", as segqatd, segqat and the workers write
// and read it (AIP-122): one definition of the prefix and of what a valid
// name is.
#ifndef SEGQAT_COMMON_JOB_NAME_H_
#define SEGQAT_COMMON_JOB_NAME_H_

#include <algorithm>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/quote.h"

namespace segqat {

inline constexpr absl::string_view kJobNamePrefix = "jobs/";

// "jobs/ID".
inline std::string JobName(absl::string_view id) { return absl::StrCat(kJobNamePrefix, id); }

// ID of "jobs/ID"; a bare ID as it is (segqat takes either on its command
// line). No checks: for names segqatd itself wrote.
inline std::string JobIdOf(absl::string_view name) {
  if (absl::StartsWith(name, kJobNamePrefix)) name.remove_prefix(kJobNamePrefix.size());
  return std::string(name);
}

// ID of a name a caller sent: "jobs/" and 1 to 64 letters, digits, '-' or
// '_' (JobStore::NewId makes hex ones); InvalidArgument naming `field` and
// quoting the name otherwise.
inline absl::StatusOr<std::string> ParseJobName(absl::string_view name,
                                                absl::string_view field = "name") {
  const absl::string_view id =
      absl::StartsWith(name, kJobNamePrefix) ? name.substr(kJobNamePrefix.size()) : "";
  const bool ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuoteForMessage(name), " is not a job name (expected jobs/ID)"));
  }
  return std::string(id);
}

}  // namespace segqat

#endif  // SEGQAT_COMMON_JOB_NAME_H_
