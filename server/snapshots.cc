// A job's snapshots on segqatd (server/scheduler.h): the resume point is set
// by the upload that completes a snapshot (Scheduler::ArtifactUploaded with
// completes_snapshot, worker/snapshots.h); which it keeps: the newest
// --keep-snapshots while it runs (and the resume point), none once it ended.
#include <spdlog/spdlog.h>

#include <functional>
#include <set>

#include "job/artifact_layout.h"
#include "server/job_state.h"
#include "server/scheduler.h"

namespace segqat::server {

void Scheduler::KeepNewestSnapshots(const std::string& job_id) {
  auto job = store_->Get(job_id);
  if (!job.ok()) return;
  const size_t keep =
      IsFinal(job->state()) ? 0 : static_cast<size_t>(std::max(1, options_.keep_snapshots));
  std::set<int64_t, std::greater<int64_t>> numbers;
  for (const v1::Artifact& a : job->artifacts()) {
    if (auto n = job::SnapshotNumber(a.name())) numbers.insert(*n);
  }
  size_t kept = 0;
  for (int64_t n : numbers) {
    const std::string prefix = job::SnapshotName(n);
    // The snapshot a requeued attempt would resume from stays while the job runs.
    if (kept < keep || (prefix == job->snapshot() && keep > 0)) {
      ++kept;
      continue;
    }
    if (auto st = store_->RemoveArtifacts(job_id, prefix); !st.ok()) {
      spdlog::warn("[job {}] cannot unlist {}: {}", job_id, prefix, st.ToString());
      continue;
    }
    if (auto st = artifacts_->Remove(job_id, prefix); !st.ok()) {
      spdlog::warn("[job {}] {}", job_id, st.ToString());
    }
  }
  // An ended job's snapshots left its listing with its end (JobStore::Transition):
  // their files go too.
  if (keep == 0) {
    if (auto st = artifacts_->Remove(job_id, job::kSnapshots); !st.ok()) {
      spdlog::warn("[job {}] {}", job_id, st.ToString());
    }
  }
}

}  // namespace segqat::server
