#include "server/scheduler.h"

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

namespace segqat::server {
namespace {

constexpr int64_t kForgetLostWorkersUs = 600'000'000;  // 10 minutes
// What one worker report, and one set of credentials, may make ListWorkers hold.
constexpr int kMaxDevicesPerWorker = 64;
constexpr int kMaxWorkersPerIdentity = 256;

absl::StatusOr<std::string> LeaseJobId(const v1::Lease& lease) {
  return ParseJobName(lease.job(), "lease.job");
}

absl::Status CheckWorkerId(const std::string& id) {
  if (id.empty() || id.size() > 63) {
    return absl::InvalidArgumentError("worker_id: 1 to 63 characters");
  }
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return absl::InvalidArgumentError("worker_id: only letters, digits, '.', '_' and '-'");
    }
  }
  return absl::OkStatus();
}

google::protobuf::Timestamp ToTimestamp(int64_t us) {
  google::protobuf::Timestamp t;
  t.set_seconds(us / 1'000'000);
  t.set_nanos(static_cast<int32_t>((us % 1'000'000) * 1000));
  return t;
}

}  // namespace

Scheduler::Scheduler(JobStore* store, ArtifactStore* artifacts, EventBus* bus,
                     SchedulerOptions options)
    : store_(store),
      artifacts_(artifacts),
      bus_(bus),
      options_(std::move(options)),
      leases_(options_.now, options_.lease_timeout.count() * 1000) {}

Scheduler::~Scheduler() { Shutdown(); }

absl::Status Scheduler::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  artifacts_->RemoveUploads("");  // a previous process's unfinished uploads
  for (v1::JobState s : {v1::RUNNING, v1::CANCELLING}) {
    auto jobs = store_->ListByState(s);
    if (!jobs.ok()) return jobs.status();
    for (const v1::Job& job : *jobs) {
      const std::string id = JobIdOf(job.name());
      auto token = store_->LeaseToken(id);
      if (absl::StartsWith(job.worker(), "workers/") && job.spec().workers() <= 1 && token.ok() &&
          !token->empty()) {
        Lease& lease = leases_.Grant(id, 0, job.worker().substr(8), job.attempt(), *token);
        lease.inputs = InputJobIds(job.spec());
        auto acked = store_->AckedWorkerSeq(id);
        if (!acked.ok()) return acked.status();
        lease.acked_seq = *acked;
        spdlog::info("[job {}] waits for {} to report (attempt {})", id, job.worker(),
                     job.attempt());
      } else {
        // A gang's ranks are not recorded (nor a lease from before lease
        // tokens); it starts over from its snapshot.
        Requeue(id, "server restarted; resumes from its last snapshot");
      }
    }
  }
  if (options_.expiry_thread) {
    expiry_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      const auto tick = std::max(std::chrono::milliseconds(50), options_.lease_timeout / 10);
      auto next_sweep = std::chrono::steady_clock::now();
      while (!cv_.wait_for(lock, tick, [this] { return shutting_down_; })) {
        ExpireLocked();
        if (options_.retention.count() > 0 && std::chrono::steady_clock::now() >= next_sweep) {
          next_sweep = std::chrono::steady_clock::now() + std::chrono::minutes(1);
          DeleteExpiredJobs();
        }
      }
    });
  }
  return absl::OkStatus();
}

void Scheduler::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    cv_.notify_all();
  }
  if (expiry_.joinable()) expiry_.join();
}

absl::StatusOr<v1::SynchronizeResponse> Scheduler::Synchronize(
    const v1::SynchronizeRequest& request, const std::string& identity) {
  if (request.protocol() != v1::WORKER_PROTOCOL_V1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "protocol: this server speaks worker protocol ", v1::WORKER_PROTOCOL_V1, ", the worker ",
        static_cast<int>(request.protocol()), "; upgrade the worker or the server"));
  }
  if (auto st = CheckWorkerId(request.worker_id()); !st.ok()) return st;
  const std::string& worker_id = request.worker_id();
  if (request.devices_size() > kMaxDevicesPerWorker) {
    return absl::InvalidArgumentError(absl::StrCat("devices: ", request.devices_size(),
                                                   " devices; a worker reports at most ",
                                                   kMaxDevicesPerWorker));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (workers_.count(worker_id) == 0) {
    int same = 0;
    for (const auto& [id, entry] : workers_) same += entry.identity == identity ? 1 : 0;
    if (same >= kMaxWorkersPerIdentity) {
      Refused("worker_id");
      return absl::ResourceExhaustedError(
          absl::StrCat("worker_id: these credentials report as ", same,
                       " workers already, the most allowed; "
                       "reuse an id (workers are forgotten 10 minutes after their last report)"));
    }
  }
  if (auto known = workers_.find(worker_id);
      known != workers_.end() && known->second.identity != identity) {
    Refused("worker_id");
    return absl::PermissionDeniedError(absl::StrCat(
        "worker_id: workers/", worker_id, " reports under other credentials; pick another id"));
  }
  WorkerEntry& w = workers_[worker_id];
  w.identity = identity;
  w.last_report_us = options_.now();
  w.worker.set_name(absl::StrCat("workers/", worker_id));
  w.worker.set_host(request.host().substr(0, 255));
  w.worker.set_runtime(request.runtime().substr(0, 255));
  w.rendezvous =
      request.rendezvous_port() > 0 && !request.address().empty()
          ? absl::StrCat(request.address().substr(0, 255), ":", request.rendezvous_port())
          : "";
  w.worker.clear_devices();
  std::vector<std::string> cuda;
  for (const v1::Device& d : request.devices()) {
    if (d.kind() == "cuda") cuda.push_back(absl::StrCat("cuda:", d.index()));
    *w.worker.add_devices() = d;
  }
  w.gpus = static_cast<int>(cuda.size());
  w.worker.set_device(cuda.empty() ? "cpu" : absl::StrJoin(cuda, ","));
  *w.worker.mutable_last_report_time() = ToTimestamp(w.last_report_us);

  v1::SynchronizeResponse response;
  response.set_report_interval_ms(static_cast<int32_t>(options_.report_interval.count()));
  const v1::WorkerReport& report = request.report();
  if (report.has_running()) {
    const auto& running = report.running();
    auto id = LeaseJobId(running.lease());
    if (!id.ok()) return id.status();
    auto lease = leases_.Renew(*id, running.lease().rank(), worker_id, running.lease().fencing(),
                               running.lease().token());
    if (!lease.ok()) {
      Refused("lease");
      return lease.status();
    }
    if (running.lease().rank() == 0) {
      if (auto st = ApplyEvents(*id, *lease, running.events()); !st.ok()) return st;
      if (!running.snapshot().empty()) {
        (void)store_->SetSnapshot(*id, running.snapshot());
        KeepNewestSnapshots(*id);
      }
    }
    response.set_acked_seq((*lease)->acked_seq);
    w.worker.set_state("busy");
    w.worker.set_job(running.lease().job());
    auto job = store_->Get(*id);
    if (job.ok() && job->state() == v1::CANCELLING) {
      *response.mutable_stop()->mutable_lease() = running.lease();
      response.mutable_stop()->set_cancelled(true);
    } else {
      *response.mutable_run()->mutable_lease() = running.lease();
    }
    return response;
  }
  if (report.has_finished()) {
    const auto& finished = report.finished();
    auto id = LeaseJobId(finished.lease());
    if (!id.ok()) return id.status();
    const int rank = finished.lease().rank();
    auto lease =
        leases_.Renew(*id, rank, worker_id, finished.lease().fencing(), finished.lease().token());
    if (!lease.ok()) {
      Refused("lease");
      return lease.status();
    }
    if (rank == 0) {
      if (auto st = ApplyEvents(*id, *lease, finished.events()); !st.ok()) return st;
      response.set_acked_seq((*lease)->acked_seq);
      if (!finished.snapshot().empty()) (void)store_->SetSnapshot(*id, finished.snapshot());
      if (auto st = Finish(*id, finished, worker_id); !st.ok()) return st;
      KeepNewestSnapshots(*id);
    } else if (finished.outcome() == v1::WorkerReport::Finished::FAILED) {
      // A rank that cannot run fails the job: its peers would wait forever.
      v1::WorkerReport::Finished failed = finished;
      failed.set_error(absl::StrCat("rank ", rank, " on ", worker_id, ": ", finished.error()));
      if (auto st = Finish(*id, failed, worker_id); !st.ok()) return st;
    } else {
      leases_.Release(*id, rank);  // rank 0 reports the outcome
    }
  } else if (auto held = leases_.HeldBy(worker_id);
             held.has_value() && pending_.count(worker_id) == 0) {
    // The worker came back idle (restarted): the attempt it held is lost.
    // (An idle worker with a pending rank has not been told of it yet.)
    if (metrics_ != nullptr) metrics_->LeaseExpired();
    LoseAttempt(held->job_id,
                absl::StrCat("worker ", worker_id, " restarted; resumes from its last snapshot"),
                /*backoff=*/false);
  }
  w.worker.set_state("idle");
  w.worker.clear_job();
  if (request.draining()) {
    for (auto& [job, members] : gangs_) {
      members.erase(std::remove(members.begin(), members.end(), worker_id), members.end());
    }
    response.mutable_idle();
  } else if (!Assign(&w, &response)) {
    response.mutable_idle();
  }
  return response;
}

absl::Status Scheduler::ApplyEvents(
    const std::string& job_id, Lease* lease,
    const google::protobuf::RepeatedPtrField<v1::JobEvent>& events) {
  bool any = false;
  v1::Progress progress;
  bool progress_changed = false;
  for (const v1::JobEvent& in : events) {
    if (in.seq() <= lease->acked_seq) continue;  // a resend of a stored event
    if (in.seq() != lease->acked_seq + 1 && lease->acked_seq != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("events: seq ", in.seq(), " after ", lease->acked_seq, " leaves a gap"));
    }
    if (!in.has_step() && !in.has_evaluation() && !in.has_log()) {
      return absl::InvalidArgumentError("events: workers send steps, evaluations and logs only");
    }
    if (!progress_changed && (in.has_step() || in.has_evaluation())) {
      auto job = store_->Get(job_id);
      if (job.ok()) progress = job->progress();
    }
    v1::JobEvent ev = in;
    ev.clear_seq();
    ev.clear_time();
    ev.set_worker_seq(in.seq());
    auto stored = store_->AppendEvent(job_id, std::move(ev));
    if (!stored.ok()) return stored.status();
    lease->acked_seq = in.seq();
    any = true;
    if (in.has_step()) {
      const v1::TrainStep& s = in.step();
      progress.set_epoch(s.epoch());
      progress.set_step(s.step());
      progress.set_total_steps(s.total_steps());
      progress.set_last_loss(s.loss());
      progress.set_learning_rate(s.learning_rate());
      progress.set_images_per_second(s.images_per_second());
      progress.set_eta_seconds(s.eta_seconds());
      progress_changed = true;
      if (metrics_ != nullptr) {
        metrics_->Step(job_id, s.loss(), s.learning_rate(), s.images_per_second(),
                       s.steps_per_second() > 0 ? 1.0 / s.steps_per_second() : 0.0);
      }
    } else if (in.has_evaluation()) {
      progress.set_best_miou(std::max(progress.best_miou(), in.evaluation().miou()));
      progress_changed = true;
      if (metrics_ != nullptr) metrics_->Evaluated(job_id, in.evaluation().miou());
    }
  }
  if (progress_changed) (void)store_->SetProgress(job_id, progress);
  if (any) bus_->Notify(job_id);
  return absl::OkStatus();
}

void Scheduler::Refused(const std::string& reason) {
  if (metrics_ != nullptr) metrics_->WorkerRefused(reason);
}

absl::Status Scheduler::CheckLease(const std::string& worker_id, const v1::Lease& lease) {
  auto id = LeaseJobId(lease);
  if (!id.ok()) return id.status();
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status st = leases_.Check(*id, lease.rank(), worker_id, lease.fencing(), lease.token());
  if (!st.ok()) Refused("lease");
  return st;
}

bool Scheduler::MayRead(const std::string& identity, const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, lease] : leases_.all()) {
    auto w = workers_.find(lease.worker_id);
    if (w == workers_.end() || w->second.identity != identity) continue;
    if (lease.job_id == job_id || lease.inputs.count(job_id) > 0) return true;
  }
  return false;
}

absl::Status Scheduler::ArtifactUploaded(const std::string& job_id, const v1::Artifact& artifact,
                                         const std::string& completes_snapshot) {
  std::lock_guard<std::mutex> lock(mu_);  // ordered with the snapshot pruning in Synchronize
  if (auto st = store_->AddArtifact(job_id, artifact); !st.ok()) return st;
  if (!completes_snapshot.empty()) {
    if (auto st = store_->SetSnapshot(job_id, completes_snapshot); !st.ok()) return st;
  }
  // A snapshot that lands late (its job moved on, or ended) is pruned at once.
  if (absl::StartsWith(artifact.name(), absl::StrCat(job::kSnapshots, "/")))
    KeepNewestSnapshots(job_id);
  v1::JobEvent ev;
  *ev.mutable_artifact() = artifact;
  if (auto appended = store_->AppendEvent(job_id, ev); !appended.ok()) {
    spdlog::warn("[job {}] {} is listed; its event was not recorded: {}", job_id, artifact.name(),
                 appended.status().ToString());
  }
  bus_->Notify(job_id);
  return absl::OkStatus();
}

void Scheduler::ExpireLeases() {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked();
}

void Scheduler::ExpireLocked() {
  // Attempts that ended while the store could not record it (a full disk).
  const std::map<std::string, std::string> again = unrecorded_;
  for (const auto& [job_id, reason] : again) LoseAttempt(job_id, reason, /*backoff=*/false);
  for (const Lease& l : leases_.TakeExpired()) {
    if (metrics_ != nullptr) metrics_->LeaseExpired();
    LoseAttempt(l.job_id,
                absl::StrCat("worker ", l.worker_id, " stopped reporting (lease expired",
                             l.rank == 0 ? "" : absl::StrCat(", rank ", l.rank),
                             "); resumes from its last snapshot"),
                /*backoff=*/true);
  }
  const int64_t now = options_.now();
  for (auto it = workers_.begin(); it != workers_.end();) {
    it = now - it->second.last_report_us > kForgetLostWorkersUs ? workers_.erase(it) : ++it;
  }
}

std::vector<v1::Worker> Scheduler::Workers() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = options_.now();
  std::vector<std::pair<int64_t, v1::Worker>> all;
  for (const auto& [id, w] : workers_) {
    v1::Worker out = w.worker;
    if (now - w.last_report_us >= options_.lease_timeout.count() * 1000) out.set_state("lost");
    all.emplace_back(w.last_report_us, std::move(out));
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second.name() < b.second.name();
  });
  std::vector<v1::Worker> out;
  for (auto& [t, w] : all) out.push_back(std::move(w));
  return out;
}

}  // namespace segqat::server
