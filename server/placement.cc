// Placement (server/scheduler.h): which queued job an idle worker is given
// (priority, then age; only jobs whose GPU need it meets; data-parallel jobs
// as a gang of ranks), and the lease each rank is granted.
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
#include "job/job_spec.h"
#include "server/auth.h"
#include "server/job_state.h"
#include "server/job_validation.h"
#include "server/scheduler.h"

namespace segqat::server {

bool Scheduler::Alive(const std::string& worker_id) const {
  auto it = workers_.find(worker_id);
  return it != workers_.end() &&
         options_.now() - it->second.last_report_us < options_.lease_timeout.count() * 1000;
}

bool Scheduler::Assign(WorkerEntry* w, v1::SynchronizeResponse* response) {
  const std::string worker_id = w->worker.name().substr(8);
  if (auto it = pending_.find(worker_id); it != pending_.end()) {
    // Its rank of a gang placed while it slept.
    w->worker.set_state("busy");
    w->worker.set_job(it->second.lease().job());
    *response->mutable_run() = std::move(it->second);
    pending_.erase(it);
    return true;
  }
  if (shutting_down_) return false;
  // The queue is walked a page of ids at a time and a job read only when
  // it is next in line, so a report costs the same however long the queue.
  constexpr int kPage = 64;
  const int64_t now = options_.now();
  for (int64_t offset = 0;; offset += kPage) {
    auto ids = store_->IdsByState(v1::QUEUED, w->gpus, kPage, offset);
    if (!ids.ok() || ids->empty()) return false;
    for (const std::string& id : *ids) {
      auto nb = not_before_us_.find(id);
      if (nb != not_before_us_.end() && nb->second > now) continue;
      auto queued = store_->Get(id);
      if (!queued.ok() || queued->state() != v1::QUEUED) continue;
      if (std::optional<bool> placed = TryAssign(*queued, w, response)) return *placed;
    }
    if (static_cast<int>(ids->size()) < kPage) return false;
  }
}

std::optional<bool> Scheduler::TryAssign(const v1::Job& job, WorkerEntry* w,
                                         v1::SynchronizeResponse* response) {
  const std::string worker_id = w->worker.name().substr(8);
  const std::string id = JobIdOf(job.name());
  const int gpus = job::GpusNeeded(job.spec());
  if (gpus > w->gpus) return std::nullopt;
  if (job.spec().workers() > 1) {
    // Reserve workers for it only when enough of them exist, so a gang
    // larger than the pool does not hold the queue behind it.
    int able = 0;
    for (const auto& [other, entry] : workers_) {
      able += Alive(other) && entry.gpus >= gpus ? 1 : 0;
    }
    if (able < job.spec().workers()) return std::nullopt;
    return AssignGang(job, w, response);  // false: reserved while the gang forms
  }
  auto running = store_->Transition(id, v1::RUNNING, "");
  if (!running.ok()) return std::nullopt;
  not_before_us_.erase(id);
  (void)store_->SetWorker(id, w->worker.name());
  v1::RunAssignment* run = response->mutable_run();
  GrantLease(*running, 0, worker_id, run->mutable_lease());
  *run->mutable_spec() = running->spec();
  for (const v1::Device& d : w->worker.devices()) {
    if (d.kind() == "cuda" && run->gpus_size() < gpus) run->add_gpus(d.index());
  }
  run->set_snapshot(running->snapshot());
  w->worker.set_state("busy");
  w->worker.set_job(running->name());
  if (metrics_ != nullptr) metrics_->JobStarted(*running);
  spdlog::info("[job {}] attempt {} on {}", id, running->attempt(), w->worker.name());
  bus_->Notify(id);
  return true;
}

bool Scheduler::AssignGang(const v1::Job& job, WorkerEntry* w, v1::SynchronizeResponse* response) {
  const std::string id = JobIdOf(job.name());
  const std::string worker_id = w->worker.name().substr(8);
  std::vector<std::string>& gang = gangs_[id];
  // Members that stopped reporting, or joined another gang, drop out.
  gang.erase(std::remove_if(gang.begin(), gang.end(),
                            [&](const std::string& m) { return m != worker_id && !Alive(m); }),
             gang.end());
  for (auto& [other, members] : gangs_) {
    if (other != id) {
      members.erase(std::remove(members.begin(), members.end(), worker_id), members.end());
    }
  }
  if (std::find(gang.begin(), gang.end(), worker_id) == gang.end()) {
    // Rank 0 must offer a rendezvous address.
    if (gang.empty() && w->rendezvous.empty()) return false;
    gang.push_back(worker_id);
  }
  const int world = job.spec().workers();
  if (static_cast<int>(gang.size()) < world) return false;
  auto running = store_->Transition(id, v1::RUNNING, "");
  if (!running.ok()) return false;
  not_before_us_.erase(id);
  const std::string master = workers_[gang[0]].rendezvous;
  (void)store_->SetWorker(id, absl::StrCat("workers/", gang[0]));
  const int gpus = job::GpusNeeded(job.spec());
  for (int r = 0; r < world; ++r) {
    v1::RunAssignment run;
    GrantLease(*running, r, gang[r], run.mutable_lease());
    *run.mutable_spec() = running->spec();
    for (const v1::Device& d : workers_[gang[r]].worker.devices()) {
      if (d.kind() == "cuda" && run.gpus_size() < gpus) run.add_gpus(d.index());
    }
    run.set_snapshot(running->snapshot());
    run.set_world_size(world);
    run.set_master(master);
    if (gang[r] == worker_id) {
      *response->mutable_run() = std::move(run);
    } else {
      pending_[gang[r]] = std::move(run);
    }
  }
  spdlog::info("[job {}] attempt {} on {} ranks ({}), rendezvous {}", id, running->attempt(), world,
               absl::StrJoin(gang, ", "), master);
  gangs_.erase(id);  // `gang` dangles from here on
  w->worker.set_state("busy");
  w->worker.set_job(running->name());
  if (metrics_ != nullptr) metrics_->JobStarted(*running);
  bus_->Notify(id);
  return true;
}

void Scheduler::GrantLease(const v1::Job& job, int rank, const std::string& worker_id,
                           v1::Lease* out) {
  const std::string job_id = JobIdOf(job.name());
  const int64_t attempt = job.attempt();
  const std::string token = RandomToken();
  const std::string digest = LeaseTokenDigest(token);
  leases_.Grant(job_id, rank, worker_id, attempt, digest).inputs = InputJobIds(job.spec());
  // Without the digest a restarted server requeues the job instead of
  // waiting for its worker: nothing is lost but time.
  if (rank == 0) {
    if (auto st = store_->SetLeaseToken(job_id, digest); !st.ok()) {
      spdlog::warn("[job {}] cannot record its lease: {}", job_id, st.ToString());
    }
  }
  out->set_job(absl::StrCat("jobs/", job_id));
  out->set_fencing(attempt);
  out->set_rank(rank);
  out->set_token(token);
}

}  // namespace segqat::server
