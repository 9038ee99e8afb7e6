#include "server/scheduler.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/job_progress_sink.h"
#include "server/job_state.h"

namespace segqat::server {
namespace fs = std::filesystem;

runtime::JobRequest ToJobRequest(const v1::JobSpec& spec) {
  runtime::JobRequest r;
  switch (spec.kind()) {
    case v1::QUANT_TRAIN: r.kind = runtime::JobKind::kQuantTrain; break;
    case v1::EVAL: r.kind = runtime::JobKind::kEval; break;
    case v1::EXPORT: r.kind = runtime::JobKind::kExport; break;
    default: r.kind = runtime::JobKind::kTrain; break;
  }
  r.config_yaml = spec.config_yaml();
  r.overrides.assign(spec.overrides().begin(), spec.overrides().end());
  r.not_quant_pattern.assign(spec.not_quant_pattern().begin(), spec.not_quant_pattern().end());
  r.do_eval = spec.do_eval();
  r.convert = spec.convert();
  r.use_gpu = spec.use_gpu();
  r.log_steps = spec.log_steps() > 0 ? spec.log_steps() : 10;
  return r;
}

Scheduler::Scheduler(JobStore* store, ArtifactStore* artifacts, EventBus* bus,
                     SchedulerOptions options)
    : store_(store), artifacts_(artifacts), bus_(bus), options_(std::move(options)) {}

Scheduler::~Scheduler() { Shutdown(); }

runtime::PathResolver Scheduler::Resolver() const {
  JobStore* store = store_;
  ArtifactStore* artifacts = artifacts_;
  return [store, artifacts](const std::string& key,
                            const std::string& value) -> absl::StatusOr<std::string> {
    if (!absl::StartsWith(value, "jobs/")) return value;
    const std::string rest = value.substr(5);
    const size_t slash = rest.find('/');
    if (slash == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": '", value, "' must name an artifact, e.g. jobs/ID/final"));
    }
    const std::string id = rest.substr(0, slash), name = rest.substr(slash + 1);
    if (auto st = CheckRelativeName(id, key); !st.ok()) return st;
    if (auto st = CheckRelativeName(name, key); !st.ok()) return st;
    if (auto job = store->Get(id); !job.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": no job ", id));
    }
    auto path = artifacts->Path(id, name);
    if (!path.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", path.status().message()));
    }
    return *path;
  };
}

absl::Status Scheduler::Start() {
  for (v1::JobState s : {v1::RUNNING, v1::CANCELLING}) {
    auto jobs = store_->ListByState(s);
    if (!jobs.ok()) return jobs.status();
    for (const v1::Job& job : *jobs) {
      const std::string id = job.name().substr(5);
      auto moved = s == v1::CANCELLING
                       ? store_->Transition(id, v1::CANCELLED, "cancelled while the server was down")
                       : store_->Transition(id, v1::QUEUED,
                                            "server restarted; resumes from its last snapshot");
      if (!moved.ok()) return moved.status();
      spdlog::info("[job {}] recovered as {}", id, StateName(moved->state()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < options_.local_workers; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->status.name = absl::StrCat("workers/local-", i);
    slot->status.device = options_.gpu ? absl::StrCat("cuda:", i) : "cpu";
    slot->status.state = "idle";
    Slot* raw = slot.get();
    slots_.push_back(std::move(slot));
    raw->thread = std::thread([this, raw] { WorkerLoop(raw); });
  }
  return absl::OkStatus();
}

void Scheduler::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

bool Scheduler::TakeJob(Slot* slot, v1::Job* job) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutting_down_) {
    wake_ = false;
    auto queued = store_->ListByState(v1::QUEUED);
    if (queued.ok() && !queued->empty()) {
      const std::string id = queued->front().name().substr(5);
      auto running = store_->Transition(id, v1::RUNNING, "");
      if (running.ok()) {
        (void)store_->SetWorker(id, slot->status.name);
        *job = *running;
        if (metrics_ != nullptr) metrics_->JobStarted(*running);
        slot->job = id;
        slot->stop = false;
        slot->cancel = false;
        slot->status.state = "busy";
        slot->status.job = running->name();
        bus_->Notify(id);
        return true;
      }
    }
    // Woken by Wake(); the timeout is a safety net, not the mechanism.
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return wake_ || shutting_down_; });
  }
  return false;
}

void Scheduler::WorkerLoop(Slot* slot) {
  v1::Job job;
  while (TakeJob(slot, &job)) {
    RunOne(slot, job);
    std::lock_guard<std::mutex> lock(mu_);
    slot->job.clear();
    slot->status.state = shutting_down_ ? "draining" : "idle";
    slot->status.job.clear();
  }
}

void Scheduler::RunOne(Slot* slot, const v1::Job& job) {
  const std::string id = job.name().substr(5);
  const std::string work_dir = (fs::path(options_.work_root) / id).string();
  std::error_code ec;
  fs::create_directories(work_dir, ec);
  JobProgressSink sink(store_, bus_, metrics_, id, job.progress(),
                       (fs::path(work_dir) / "job.log").string());
  runtime::JobRequest request = ToJobRequest(job.spec());
  if (options_.gpu) request.use_gpu = true;
  sink.OnLog(absl::StrCat("attempt ", job.attempt(), " on ", slot->status.name, " (",
                          slot->status.device, ")"));
  auto cfg = runtime::BuildJobConfig(request, Resolver());
  if (!cfg.ok()) {
    Finish(slot, job, cfg.status(), false, {}, work_dir);
    return;
  }
  auto outcome = runtime::RunJob(request, *cfg, work_dir, &sink, &slot->stop);
  if (!outcome.ok()) {
    Finish(slot, job, outcome.status(), false, {}, work_dir);
    return;
  }
  Finish(slot, job, absl::OkStatus(), outcome->interrupted, outcome->outputs, work_dir);
}

void Scheduler::Publish(const std::string& job_id, const std::string& source,
                        const std::string& name) {
  auto published = artifacts_->Publish(job_id, source, name);
  if (!published.ok()) {
    spdlog::error("[job {}] cannot publish {}: {}", job_id, name, published.status().ToString());
    return;
  }
  for (const v1::Artifact& a : *published) {
    (void)store_->AddArtifact(job_id, a);
    v1::JobEvent ev;
    *ev.mutable_artifact() = a;
    (void)store_->AppendEvent(job_id, ev);
  }
  bus_->Notify(job_id);
}

void Scheduler::Finish(Slot* slot, const v1::Job& job, const absl::Status& status,
                       bool interrupted, const std::vector<std::string>& outputs,
                       const std::string& work_dir) {
  const std::string id = job.name().substr(5);
  bool cancelled, shutting_down;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = slot->cancel;
    shutting_down = shutting_down_;
  }
  if (!status.ok()) {
    std::ofstream(fs::path(work_dir) / "job.log", std::ios::app)
        << "FAILED: " << status.message() << "\n";
  }
  if (!interrupted || cancelled) {
    Publish(id, (fs::path(work_dir) / "job.log").string(), "job.log");
  }
  absl::StatusOr<v1::Job> moved;
  if (!status.ok()) {
    moved = store_->Transition(id, v1::FAILED, std::string(status.message()));
  } else if (interrupted && cancelled) {
    // Keep what the job had done: its last snapshot.
    if (fs::exists(fs::path(work_dir) / "interrupted")) {
      Publish(id, (fs::path(work_dir) / "interrupted").string(), "interrupted");
    }
    moved = store_->Transition(id, v1::CANCELLED, "cancelled");
  } else if (interrupted) {
    moved = store_->Transition(id, v1::QUEUED,
                               shutting_down ? "server stopping; resumes from its snapshot"
                                             : "interrupted; resumes from its snapshot");
  } else {
    for (const std::string& out : outputs) {
      Publish(id, (fs::path(work_dir) / out).string(), out);
    }
    moved = store_->Transition(id, v1::SUCCEEDED, "");
  }
  if (!moved.ok()) {
    spdlog::error("[job {}] cannot record the end state: {}", id, moved.status().ToString());
  } else {
    if (metrics_ != nullptr && IsFinal(moved->state())) metrics_->JobEnded(*moved);
    spdlog::info("[job {}] {}{}", id, StateName(moved->state()),
                 status.ok() ? "" : absl::StrCat(": ", status.message()));
  }
  bus_->Notify(id);
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
    bus_->Notify(job_id);
    return moved;
  }
  for (auto& slot : slots_) {
    if (slot->job == job_id) {
      slot->cancel = true;
      slot->stop = true;
    }
  }
  auto moved = store_->Transition(job_id, v1::CANCELLING, "cancel requested");
  bus_->Notify(job_id);
  return moved;
}

void Scheduler::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_ && slots_.empty()) return;
    shutting_down_ = true;
    for (auto& slot : slots_) slot->stop = true;
    cv_.notify_all();
  }
  for (auto& slot : slots_) {
    if (slot->thread.joinable()) slot->thread.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  slots_.clear();
}

std::vector<WorkerStatus> Scheduler::Workers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerStatus> out;
  for (const auto& slot : slots_) out.push_back(slot->status);
  return out;
}

}  // namespace segqat::server
