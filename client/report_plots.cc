#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/plot_report_script.h"
#include "client/report_parts.h"

extern char** environ;

namespace segqat::client::report {
namespace fs = std::filesystem;
namespace {

// Runs the embedded plot script; its output goes to `log`.
absl::Status RunPlots(const std::string& python, const fs::path& data, const fs::path& out_dir,
                      const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> args = {python, "-c", kPlotReportScript, data.string(),
                                   out_dir.string()};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "report: cannot run ", python, " for the plots (", std::strerror(rc),
        "); set SEGQAT_PYTHON to a Python 3 with matplotlib (Debian: python3-matplotlib)"));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    auto text = ReadFile(log);
    std::string tail = text.ok() ? *text : "";
    if (tail.size() > 600) tail = tail.substr(tail.size() - 600);
    return absl::FailedPreconditionError(
        absl::StrCat("report: the plots failed (", python,
                     "; needs matplotlib, Debian: python3-matplotlib): ", tail));
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
