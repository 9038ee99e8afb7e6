// Reading a job's files so that none can come from outside the folders the
// worker serves (`--data-root`, and its own work directory), even when a
// link is swapped in between a check and the read. ConfineReads() is set
// once per worker process; ReadJobFile() then resolves the path, picks the
// root it lies in and opens the rest beneath that root's descriptor with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (a walk of O_NOFOLLOW
// openat calls on kernels without openat2), so a component that became a
// link since is refused instead of followed. The bytes are read from that
// one descriptor: what was opened is what is used.
//
// Without ConfineReads (segqat-worker train on one's own machine) every
// path is read as it is. Errors name the file as the caller shows it, never
// its bytes.
#ifndef SEGQAT_ENGINE_DATA_CONFINED_READ_H_
#define SEGQAT_ENGINE_DATA_CONFINED_READ_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace segqat::data {

// Sets the process's read roots (each resolved now; ones that do not exist
// are dropped). Empty: reads are not confined. Call before jobs run.
void ConfineReads(const std::vector<std::string>& roots);
bool ReadsConfined();

// The whole regular file at `path`. `shown` names it in errors (e.g. "image
// LIST line 3 (its image)"). NotFound when missing; PermissionDenied when
// it lies outside every root or a component is a link; InvalidArgument for
// a non-regular file; ResourceExhausted past `max_bytes`.
absl::StatusOr<std::string> ReadJobFile(const std::string& path, const std::string& shown,
                                        int64_t max_bytes = int64_t{4} << 30);

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_CONFINED_READ_H_
