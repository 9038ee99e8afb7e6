// How a job's attempt ends (server/scheduler.h): finished by its worker,
// lost with its worker (counted against --max-attempts), requeued with a
// backoff, cancelled; ended jobs past retention.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/job_name.h"
#include "job/artifact_layout.h"
#include "server/auth.h"
#include "server/job_state.h"
#include "server/job_validation.h"
#include "server/scheduler.h"

namespace segqat::server {

void Scheduler::ReleaseAttempt(const std::string& job_id) {
  leases_.ReleaseJob(job_id);
  artifacts_->RemoveUploads(job_id);  // unfinished uploads of the attempt
  const std::string name = absl::StrCat("jobs/", job_id);
  for (auto it = pending_.begin(); it != pending_.end();) {
    it = it->second.lease().job() == name ? pending_.erase(it) : ++it;
  }
}

absl::Status Scheduler::Finish(const std::string& job_id, const v1::WorkerReport::Finished& report,
                               const std::string& worker_id) {
  auto job = store_->Get(job_id);
  if (!job.ok()) {
    ReleaseAttempt(job_id);
    return absl::OkStatus();
  }
  const bool cancelling = job->state() == v1::CANCELLING;
  absl::StatusOr<v1::Job> moved;
  switch (report.outcome()) {
    case v1::WorkerReport::Finished::SUCCEEDED:
      moved = store_->Transition(job_id, v1::SUCCEEDED, "");
      break;
    case v1::WorkerReport::Finished::INTERRUPTED:
      if (cancelling) {
        moved = store_->Transition(job_id, v1::CANCELLED, "cancelled");
      } else {
        ReleaseAttempt(job_id);
        Requeue(job_id, absl::StrCat("worker ", worker_id, " stopped",
                                     report.error().empty()
                                         ? ""
                                         : absl::StrCat(": ", report.error().substr(0, 1024)),
                                     "; resumes from its snapshot"));
        return absl::OkStatus();
      }
      break;
    default:
      moved = store_->Transition(job_id, v1::FAILED,
                                 report.error().empty() ? "the worker reported a failure"
                                                        : report.error().substr(0, 4096));
      break;
  }
  if (!moved.ok() && !absl::IsFailedPrecondition(moved.status()) &&
      !absl::IsNotFound(moved.status())) {
    spdlog::error("[job {}] cannot record the end state (the worker will report again): {}", job_id,
                  moved.status().ToString());
    return absl::UnavailableError(absl::StrCat("job ", job_id,
                                               ": the server cannot record its end yet (",
                                               moved.status().message(), "); report again"));
  }
  ReleaseAttempt(job_id);
  if (!moved.ok()) {
    spdlog::error("[job {}] cannot record the end state: {}", job_id, moved.status().ToString());
  } else {
    if (metrics_ != nullptr && IsFinal(moved->state())) metrics_->JobEnded(*moved);
    if (IsFinal(moved->state())) KeepNewestSnapshots(job_id);
    spdlog::info("[job {}] {} on {}{}", job_id, StateName(moved->state()), worker_id,
                 moved->error().empty() ? "" : absl::StrCat(": ", moved->error()));
  }
  bus_->Notify(job_id);
  return absl::OkStatus();
}

int Scheduler::DeleteExpiredJobs() {
  if (options_.retention.count() <= 0) return 0;
  const int64_t cutoff_us = options_.now() - options_.retention.count() * 1000000;
  int deleted = 0;
  for (v1::JobState state : {v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}) {
    auto jobs = store_->ListByState(state);
    if (!jobs.ok()) continue;
    for (const v1::Job& job : *jobs) {
      const int64_t end_us = job.end_time().seconds() * 1000000 + job.end_time().nanos() / 1000;
      if (end_us > cutoff_us) continue;
      const std::string id = JobIdOf(job.name());
      if (!store_->Delete(id).ok()) continue;
      artifacts_->RemoveUploads(id);
      if (auto st = artifacts_->Remove(id, ""); !st.ok())
        spdlog::warn("[job {}] {}", id, st.ToString());
      ++deleted;
    }
  }
  if (deleted > 0)
    spdlog::info("retention: deleted {} ended job{}", deleted, deleted == 1 ? "" : "s");
  return deleted;
}

void Scheduler::LoseAttempt(const std::string& job_id, const std::string& reason, bool backoff) {
  ReleaseAttempt(job_id);
  auto job = store_->Get(job_id);
  if (!job.ok()) {
    if (absl::IsNotFound(job.status())) unrecorded_.erase(job_id);
    return;
  }
  if (job->state() == v1::CANCELLING) {
    auto moved = store_->Transition(job_id, v1::CANCELLED, absl::StrCat("cancelled; ", reason));
    if (!moved.ok()) {
      spdlog::error("[job {}] cannot record the cancel (tried again each tick): {}", job_id,
                    moved.status().ToString());
      unrecorded_[job_id] = reason;
      return;
    }
    unrecorded_.erase(job_id);
    if (metrics_ != nullptr) metrics_->JobEnded(*moved);
    KeepNewestSnapshots(job_id);
    bus_->Notify(job_id);
    return;
  }
  if (job->state() != v1::RUNNING) {
    unrecorded_.erase(job_id);
    return;
  }
  if (unrecorded_.count(job_id) == 0) {
    auto counted = store_->AddLostAttempt(job_id);
    if (counted.ok() && counted->lost_attempts() >= options_.max_lost_attempts) {
      auto moved = store_->Transition(
          job_id, v1::FAILED,
          absl::StrCat("its worker was lost ", counted->lost_attempts(), " times (last: ", reason,
                       "); not run again (segqatd --max-attempts ", options_.max_lost_attempts,
                       ")"));
      if (moved.ok()) {
        spdlog::warn("[job {}] FAILED: {}", job_id, moved->error());
        if (metrics_ != nullptr) metrics_->JobEnded(*moved);
        KeepNewestSnapshots(job_id);
        not_before_us_.erase(job_id);
        bus_->Notify(job_id);
        return;
      }
    }
  }
  if (backoff) {
    const int shift = static_cast<int>(std::min<int64_t>(job->attempt() - 1, 15));
    const int64_t wait = std::min<int64_t>(options_.max_backoff.count() * 1000,
                                           int64_t{1'000'000} << std::max(0, shift));
    not_before_us_[job_id] = options_.now() + wait;
  }
  Requeue(job_id, reason);
}

void Scheduler::Requeue(const std::string& job_id, const std::string& reason) {
  auto moved = store_->Transition(job_id, v1::QUEUED, reason);
  if (!moved.ok()) {
    spdlog::error("[job {}] cannot requeue (tried again each tick): {}", job_id,
                  moved.status().ToString());
    if (!absl::IsFailedPrecondition(moved.status()) && !absl::IsNotFound(moved.status())) {
      unrecorded_[job_id] = reason;
    }
    return;
  }
  unrecorded_.erase(job_id);
  spdlog::info("[job {}] QUEUED: {}", job_id, reason);
  bus_->Notify(job_id);
}

absl::StatusOr<v1::Job> Scheduler::Cancel(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto job = store_->Get(job_id);
  if (!job.ok()) return job.status();
  if (IsFinal(job->state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " has already ended (", StateName(job->state()), ")"));
  }
  if (job->state() == v1::CANCELLING) return *job;
  if (job->state() == v1::QUEUED) {
    auto moved = store_->Transition(job_id, v1::CANCELLED, "cancelled before it started");
    if (moved.ok() && metrics_ != nullptr) metrics_->JobEnded(*moved);
    KeepNewestSnapshots(job_id);
    not_before_us_.erase(job_id);
    gangs_.erase(job_id);
    bus_->Notify(job_id);
    return moved;
  }
  auto moved = store_->Transition(job_id, v1::CANCELLING, "cancel requested");
  bus_->Notify(job_id);
  return moved;
}

}  // namespace segqat::server
