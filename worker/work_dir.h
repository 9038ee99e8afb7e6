// The worker's local folders: one per job attempt under --work-dir, with the
// job's epoch snapshots ("<epoch>/"), its inputs and outputs.
#ifndef SEGQAT_WORKER_WORK_DIR_H_
#define SEGQAT_WORKER_WORK_DIR_H_

#include <cstddef>
#include <string>

namespace segqat::agent {

// Removes the half-written checkpoints ("<dir>.tmp<N>", "<dir>.old") that a
// killed process left in the job folders under work_dir. Call it at start,
// before any agent on work_dir runs.
void SweepStaleTemporaries(const std::string& work_dir);

// True for an epoch snapshot's folder name ("12").
bool IsEpochSnapshot(const std::string& name);

// Removes the epoch snapshots in work_dir but the newest `keep`: once one is
// uploaded, older ones serve no resume.
void KeepNewestLocalSnapshots(const std::string& work_dir, size_t keep);

}  // namespace segqat::agent

#endif  // SEGQAT_WORKER_WORK_DIR_H_
