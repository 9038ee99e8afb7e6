// A job's snapshots on the worker, from the training's checkpoint to
// segqatd's resume point:
//   IsEpochSnapshot           the trainer writes one folder per epoch ("12")
//   SnapshotUploader          they go to segqatd beside training, never on the
//                             training thread (below)
//   completes_snapshot        the upload of a snapshot's last file marks it
//                             whole (worker/transfer.h Upload(..., snapshot));
//                             segqatd then makes it the job's resume point and
//                             prunes the older ones (server/snapshots.cc)
//   KeepNewestLocalSnapshots  once one is up, older local ones go
// SnapshotUploader: Offer() returns at once: at most one upload runs and at
// most one snapshot waits (a newer snapshot replaces the waiting one, since
// only the newest serves a resume), so a slow or unreachable server delays
// uploads and never a training step, nor the data-parallel peers waiting
// for this rank at their next collective. Thread-safe; the upload function
// runs on the uploader's own thread.
#ifndef SEGQAT_WORKER_SNAPSHOTS_H_
#define SEGQAT_WORKER_SNAPSHOTS_H_

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace segqat::agent {

// True for an epoch snapshot's folder name ("12").
bool IsEpochSnapshot(const std::string& name);

// Removes the epoch snapshots in work_dir but the newest `keep`: once one is
// uploaded, older ones serve no resume.
void KeepNewestLocalSnapshots(const std::string& work_dir, size_t keep);

class SnapshotUploader {
 public:
  // Uploads the snapshot folder `path` as the artifact `name`.
  using UploadFn = std::function<absl::Status(const std::string& path, const std::string& name)>;
  // Told of each upload that ended, with its status, on the uploader's thread.
  using DoneFn = std::function<void(const std::string& name, const absl::Status& status)>;

  SnapshotUploader(UploadFn upload, DoneFn done);
  // Stop(), then waits for an upload in flight to end (its own deadline bounds it).
  ~SnapshotUploader();
  SnapshotUploader(const SnapshotUploader&) = delete;
  SnapshotUploader& operator=(const SnapshotUploader&) = delete;

  // Queues a snapshot; replaces one that waits. Never blocks on an upload.
  void Offer(const std::string& path, const std::string& name);
  // Waits until nothing waits or is in flight (before the job's last uploads).
  void Drain();
  // Drops the waiting snapshot and uploads nothing more (the lease is gone).
  void Stop();

  // Snapshots replaced before their upload began, for the log and tests.
  int superseded() const;

 private:
  void Loop();

  const UploadFn upload_;
  const DoneFn done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::pair<std::string, std::string>> waiting_;  // (path, name)
  bool in_flight_ = false;
  bool stopped_ = false;
  int superseded_ = 0;
  std::thread thread_;  // last: starts after the members it reads
};

}  // namespace segqat::agent

#endif  // SEGQAT_WORKER_SNAPSHOTS_H_
