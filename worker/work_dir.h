// The worker's local folders: one per job attempt under --work-dir, with the
// job's epoch snapshots ("<epoch>/", worker/snapshots.h), its inputs and
// outputs.
#ifndef SEGQAT_WORKER_WORK_DIR_H_
#define SEGQAT_WORKER_WORK_DIR_H_

#include <string>

namespace segqat::agent {

// Removes the half-written checkpoints ("<dir>.tmp<N>", "<dir>.old") that a
// killed process left in the job folders under work_dir. Call it at start,
// before any agent on work_dir runs.
void SweepStaleTemporaries(const std::string& work_dir);

}  // namespace segqat::agent

#endif  // SEGQAT_WORKER_WORK_DIR_H_
