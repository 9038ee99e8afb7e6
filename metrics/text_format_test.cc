#include "metrics/text_format.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace segqat::metrics {
namespace {

TEST(TextFormatTest, HelpEscapesBackslashAndNewlineOnly) {
  EXPECT_EQ(EscapeHelp("plain"), "plain");
  EXPECT_EQ(EscapeHelp("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeHelp("line1\nline2"), "line1\\nline2");
  // Double quotes are left alone in HELP.
  EXPECT_EQ(EscapeHelp("say \"hi\""), "say \"hi\"");
}

TEST(TextFormatTest, LabelValueEscapesBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("RUNNING"), "RUNNING");
  EXPECT_EQ(EscapeLabelValue("C:\\path"), "C:\\\\path");
  EXPECT_EQ(EscapeLabelValue("a \"quoted\" word"), "a \\\"quoted\\\" word");
  EXPECT_EQ(EscapeLabelValue("two\nlines"), "two\\nlines");
  // Other characters, UTF-8 and tabs included, pass through.
  EXPECT_EQ(EscapeLabelValue("t\tü{}=,"), "t\tü{}=,");
}

TEST(TextFormatTest, NumbersAreSpelledAsPrometheusParsesThem) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-7), "-7");
  EXPECT_EQ(FormatValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e20), "1e+20");
  EXPECT_EQ(FormatValue(2.5e-7), "2.5e-07");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  // Shortest form still reads back exactly.
  const double third = 1.0 / 3.0;
  EXPECT_EQ(std::stod(FormatValue(third)), third);
}

TEST(TextFormatTest, SampleLines) {
  std::string out;
  AppendSample(&out, "x_total", "", 3);
  std::string labels;
  AppendLabel(&labels, "method", "Submit");
  AppendLabel(&labels, "code", "a\"b");
  AppendSample(&out, "y", labels, 0.5);
  EXPECT_EQ(out,
            "x_total 3\n"
            "y{method=\"Submit\",code=\"a\\\"b\"} 0.5\n");
  EXPECT_EQ(RenderLabels({"a", "b"}, {"1", "2"}), "a=\"1\",b=\"2\"");
}

TEST(TextFormatTest, FamilyHeader) {
  std::string out;
  AppendFamilyHeader(&out, "segqat_jobs", "Jobs\\by \"state\"\nnow.", "gauge");
  EXPECT_EQ(out,
            "# HELP segqat_jobs Jobs\\\\by \"state\"\\nnow.\n"
            "# TYPE segqat_jobs gauge\n");
}

}  // namespace
}  // namespace segqat::metrics
