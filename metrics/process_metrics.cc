#include "metrics/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace segqat::metrics {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status ParseError(const std::string& path, absl::string_view what) {
  return absl::InternalError(absl::StrCat("cannot parse ", path, ": ", what));
}

// Fields of /proc/<pid>/stat after the ")" closing the command name (which
// may itself hold spaces and parentheses); element 0 is field 3, "state".
absl::StatusOr<std::vector<std::string>> StatFieldsAfterComm(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  const size_t close = text->rfind(')');
  if (close == std::string::npos) return ParseError(path, "no command name");
  return std::vector<std::string>(
      absl::StrSplit(absl::string_view(*text).substr(close + 1), ' ', absl::SkipWhitespace()));
}

absl::StatusOr<double> BootTimeSeconds(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      double btime;
      if (absl::SimpleAtod(line, &btime)) return btime;
    }
  }
  return ParseError(path, "no btime line");
}

// Entries of the fd directory, not counting the one opened to list it.
absl::StatusOr<double> CountOpenFds(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return absl::UnavailableError(absl::StrCat("cannot list ", path));
  const std::string own_fd = std::to_string(dirfd(dir));
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == ".." || name == own_fd) continue;
    ++count;
  }
  closedir(dir);
  return count;
}

// The soft limit from the "Max open files" line; 0 when unlimited.
absl::StatusOr<double> MaxOpenFiles(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (words.empty()) break;
    if (words[0] == "unlimited") return 0.0;
    double limit;
    if (absl::SimpleAtod(words[0], &limit)) return limit;
    break;
  }
  return ParseError(path, "no Max open files line");
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc_root) {
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats stats;

  const std::string stat_path = proc_root + "/self/stat";
  absl::StatusOr<std::vector<std::string>> fields = StatFieldsAfterComm(stat_path);
  if (!fields.ok()) return fields.status();
  // proc(5) numbers fields from 1; element i here is field i + 3.
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kStartTime = 22 - 3, kVsize = 23 - 3;
  double utime, stime, start_ticks, vsize;
  if (fields->size() <= kVsize || !absl::SimpleAtod((*fields)[kUtime], &utime) ||
      !absl::SimpleAtod((*fields)[kStime], &stime) ||
      !absl::SimpleAtod((*fields)[kStartTime], &start_ticks) ||
      !absl::SimpleAtod((*fields)[kVsize], &vsize)) {
    return ParseError(stat_path, "too few or non-numeric fields");
  }
  stats.cpu_seconds = (utime + stime) / ticks_per_second;
  stats.virtual_memory_bytes = vsize;

  absl::StatusOr<double> btime = BootTimeSeconds(proc_root + "/stat");
  if (!btime.ok()) return btime.status();
  stats.start_time_seconds = *btime + start_ticks / ticks_per_second;

  const std::string statm_path = proc_root + "/self/statm";
  absl::StatusOr<std::string> statm = ReadFile(statm_path);
  if (!statm.ok()) return statm.status();
  std::vector<absl::string_view> pages = absl::StrSplit(*statm, ' ', absl::SkipWhitespace());
  double resident_pages;
  if (pages.size() < 2 || !absl::SimpleAtod(pages[1], &resident_pages)) {
    return ParseError(statm_path, "no resident field");
  }
  stats.resident_memory_bytes = resident_pages * page_bytes;

  absl::StatusOr<double> open_fds = CountOpenFds(proc_root + "/self/fd");
  if (!open_fds.ok()) return open_fds.status();
  stats.open_fds = *open_fds;

  absl::StatusOr<double> max_fds = MaxOpenFiles(proc_root + "/self/limits");
  if (!max_fds.ok()) return max_fds.status();
  stats.max_fds = *max_fds;
  return stats;
}

absl::Status RegisterProcessMetrics(Registry* registry, const std::string& proc_root) {
  absl::StatusOr<Family<Counter>*> cpu = registry->AddCounter(
      "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
  if (!cpu.ok()) return cpu.status();
  struct GaugeSpec {
    const char* name;
    const char* help;
    double ProcessStats::*field;
  };
  const GaugeSpec specs[] = {
      {"process_resident_memory_bytes", "Resident memory size in bytes.",
       &ProcessStats::resident_memory_bytes},
      {"process_virtual_memory_bytes", "Virtual memory size in bytes.",
       &ProcessStats::virtual_memory_bytes},
      {"process_open_fds", "Number of open file descriptors.", &ProcessStats::open_fds},
      {"process_max_fds", "Maximum number of open file descriptors.", &ProcessStats::max_fds},
      {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
       &ProcessStats::start_time_seconds},
  };
  std::vector<std::pair<Gauge*, double ProcessStats::*>> gauges;
  for (const GaugeSpec& spec : specs) {
    absl::StatusOr<Family<Gauge>*> family = registry->AddGauge(spec.name, spec.help);
    if (!family.ok()) return family.status();
    gauges.emplace_back(&(*family)->WithLabels(), spec.field);
  }
  Counter* cpu_seconds = &(*cpu)->WithLabels();
  registry->AddCollector([proc_root, cpu_seconds, gauges] {
    absl::StatusOr<ProcessStats> stats = ReadProcessStats(proc_root);
    if (!stats.ok()) return;
    cpu_seconds->RaiseTo(stats->cpu_seconds);
    for (const auto& [gauge, field] : gauges) gauge->Set((*stats).*field);
  });
  return absl::OkStatus();
}

}  // namespace segqat::metrics
