// The standard process_* metrics of the Prometheus client libraries, read
// from Linux's /proc at scrape time:
//   process_cpu_seconds_total       user + system CPU time
//   process_resident_memory_bytes   resident set size
//   process_virtual_memory_bytes    virtual memory size
//   process_open_fds                open file descriptors
//   process_max_fds                 soft limit on open file descriptors
//   process_start_time_seconds      start time, seconds since the Unix epoch
#ifndef SEGQAT_METRICS_PROCESS_METRICS_H_
#define SEGQAT_METRICS_PROCESS_METRICS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace segqat::metrics {

struct ProcessStats {
  double cpu_seconds = 0;
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;  // 0 when the limit is "unlimited".
  double start_time_seconds = 0;
};

// Reads this process's figures from <proc_root>/self/{stat,statm,fd,limits}
// and <proc_root>/stat (boot time). Tests pass a directory laid out like
// /proc. Unavailable naming the file when one cannot be read,
// Internal when one cannot be parsed. Thread-safe.
absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc_root = "/proc");

// Registers the families above in `registry` and a collector that refreshes
// them from ReadProcessStats(proc_root) on every scrape (a failed read keeps
// the previous values). Fails like Registry::AddGauge, e.g. AlreadyExists
// when called twice. The collector points only into `registry`'s own
// families, so it needs nothing else to stay alive.
absl::Status RegisterProcessMetrics(Registry* registry, const std::string& proc_root = "/proc");

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_PROCESS_METRICS_H_
