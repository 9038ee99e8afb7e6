// Client input inside an error message: quoted, C-escaped (no control bytes
// reach a log or a terminal) and cut at `max` bytes, so an error never
// echoes unbounded input.
#ifndef SEGQAT_COMMON_QUOTE_H_
#define SEGQAT_COMMON_QUOTE_H_

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace segqat {

inline std::string QuoteForMessage(absl::string_view s, size_t max = 200) {
  return absl::StrCat("'", absl::CHexEscape(s.substr(0, max)), s.size() > max ? "...'" : "'");
}

}  // namespace segqat

#endif  // SEGQAT_COMMON_QUOTE_H_
