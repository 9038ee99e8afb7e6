// The pieces of the Prometheus text exposition format 0.0.4 that Registry
// uses to render families: escaping, number spelling and sample lines.
// Pure functions; thread-safe.
#ifndef SEGQAT_METRICS_TEXT_FORMAT_H_
#define SEGQAT_METRICS_TEXT_FORMAT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace segqat::metrics {

// The Content-Type of a scrape response.
inline constexpr char kTextFormatContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// `help` with backslash written as \\ and newline as \n (the # HELP rules).
std::string EscapeHelp(absl::string_view help);

// `value` with backslash, double quote and newline escaped as \\, \" and \n.
std::string EscapeLabelValue(absl::string_view value);

// A sample value or bucket bound as Prometheus parses it: integers of
// magnitude below 2^53 without exponent or decimal point ("3", "-0" as "0"),
// other finite values in the shortest form that reads back exactly
// ("0.25", "1e+20"), and "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

// Appends `name="escaped value"` to a rendered label list, with a comma
// before it when `labels` is not empty.
void AppendLabel(std::string* labels, absl::string_view name, absl::string_view value);

// The rendered label list of names[i]="values[i]". REQUIRES: equal sizes.
std::string RenderLabels(const std::vector<std::string>& names,
                         const std::vector<std::string>& values);

// Appends one sample line "name{labels} value\n"; no braces when `labels`
// (already rendered, see AppendLabel) is empty.
void AppendSample(std::string* out, absl::string_view name, absl::string_view labels, double value);

// Appends the "# HELP" and "# TYPE" lines of a family; `type` is "counter",
// "gauge" or "histogram".
void AppendFamilyHeader(std::string* out, absl::string_view name, absl::string_view help,
                        absl::string_view type);

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_TEXT_FORMAT_H_
