#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/plot_report_script.h"
#include "client/report_parts.h"
#include "common/subprocess.h"

namespace segqat::client::report {
namespace fs = std::filesystem;
namespace {

// Runs the embedded plot script; its output goes to `log`.
absl::Status RunPlots(const std::string& python, const fs::path& data, const fs::path& out_dir,
                      const fs::path& log) {
  auto rc = RunProcess({python, "-c", kPlotReportScript, data.string(), out_dir.string()},
                       log.string(), log.string());
  if (!rc.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "report: cannot run ", python, " for the plots (", rc.status().message(),
        "); set SEGQAT_PYTHON to a Python 3 with matplotlib (Debian: python3-matplotlib)"));
  }
  if (*rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("report: the plots failed (", python,
                     "; needs matplotlib, Debian: python3-matplotlib): ", FileTail(log.string())));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> DrawPlots(const std::string& python, const fs::path& data,
                                                   const fs::path& out_dir,
                                                   const fs::path& scratch) {
  const fs::path log = scratch / "plots.log";
  if (auto st = RunPlots(python, data, out_dir, log); !st.ok()) return st;
  auto text = ReadFile(log);
  if (!text.ok()) return text.status();
  std::vector<std::string> pngs;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    if (absl::EndsWith(line, ".png")) pngs.push_back(line);
  }
  return pngs;
}

}  // namespace segqat::client::report
