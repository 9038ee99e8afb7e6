#include "metrics/text_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace segqat::metrics {
namespace {

// Every integer of smaller magnitude is exactly representable as a double.
constexpr double kTwoPow53 = 9007199254740992.0;

}  // namespace

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < kTwoPow53) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // Shortest representation that reads back to the same double.
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, r.ptr);
}

void AppendLabel(std::string* labels, absl::string_view name, absl::string_view value) {
  if (!labels->empty()) *labels += ',';
  absl::StrAppend(labels, name, "=\"", EscapeLabelValue(value), "\"");
}

std::string RenderLabels(const std::vector<std::string>& names,
                         const std::vector<std::string>& values) {
  std::string labels;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    AppendLabel(&labels, names[i], values[i]);
  }
  return labels;
}

void AppendSample(std::string* out, absl::string_view name, absl::string_view labels,
                  double value) {
  if (labels.empty()) {
    absl::StrAppend(out, name, " ", FormatValue(value), "\n");
  } else {
    absl::StrAppend(out, name, "{", labels, "} ", FormatValue(value), "\n");
  }
}

void AppendFamilyHeader(std::string* out, absl::string_view name, absl::string_view help,
                        absl::string_view type) {
  absl::StrAppend(out, "# HELP ", name, " ", EscapeHelp(help), "\n");
  absl::StrAppend(out, "# TYPE ", name, " ", type, "\n");
}

}  // namespace segqat::metrics
