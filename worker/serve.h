// `segqat-worker serve`: this process becomes a remote worker of segqatd.
#ifndef SEGQAT_WORKER_SERVE_H_
#define SEGQAT_WORKER_SERVE_H_

#include <string>
#include <vector>

namespace segqat {

// segqat-worker serve --server HOST:PORT [--gpus all|none|0,1] [--name NAME]
//                     [--work-dir DIR] [--advertise-address HOST] [--threads N]
// One agent per GPU (NAME-cudaN), or one CPU agent (NAME). Runs until
// SIGTERM or SIGINT, then snapshots and hands back its jobs. Returns the
// process exit code.
int RunServe(const std::vector<std::string>& args);

}  // namespace segqat

#endif  // SEGQAT_WORKER_SERVE_H_
