#include "server/server_metrics.h"

#include "absl/strings/str_cat.h"
#include "common/job_name.h"
#include "metrics/process_metrics.h"
#include "server/job_store.h"

namespace segqat::server {
namespace {

constexpr char kVersion[] = "0.1.0";

double Seconds(const google::protobuf::Timestamp& t) {
  return static_cast<double>(t.seconds()) + t.nanos() * 1e-9;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    metrics::Registry* r, JobStore* store,
    std::function<std::map<std::string, int>()> workers_by_state, std::chrono::seconds retention) {
  std::unique_ptr<ServerMetrics> m(new ServerMetrics());
  m->store_ = store;
  m->workers_by_state_ = std::move(workers_by_state);
  m->retention_ = retention;
  // Queue waits and job durations span seconds to days; steps and RPCs
  // milliseconds to minutes.
  const auto long_buckets = metrics::ExponentialBuckets(1, 2, 18);
  const auto short_buckets = metrics::ExponentialBuckets(0.001, 2, 18);
  absl::Status st;
  auto take = [&st](auto result, auto** out) {
    if (!st.ok()) return;
    if (!result.ok()) {
      st = result.status();
      return;
    }
    *out = *result;
  };
  take(r->AddGauge("segqat_jobs", "Jobs by state.", {"state"}), &m->jobs_);
  take(r->AddCounter("segqat_jobs_created_total", "Jobs created, by kind.", {"kind"}),
       &m->jobs_created_);
  take(r->AddHistogram("segqat_job_queue_wait_seconds", "Time from a job's creation to its start.",
                       long_buckets),
       &m->queue_wait_);
  take(r->AddHistogram("segqat_job_duration_seconds", "Time from a job's start to its end.",
                       long_buckets),
       &m->duration_);
  take(r->AddGauge("segqat_workers", "Workers by state.", {"state"}), &m->workers_);
  take(r->AddCounter("segqat_worker_lease_expirations_total",
                     "Worker leases that expired (the job was requeued)."),
       &m->lease_expirations_);
  take(r->AddCounter("segqat_worker_refused_total",
                     "Worker calls refused for who made them: an id the credentials do not "
                     "name, a stale or forged lease, a role that may not act as a worker.",
                     {"reason"}),
       &m->worker_refusals_);
  take(r->AddGauge("segqat_train_loss", "Latest training loss of a running job.", {"job"}),
       &m->loss_);
  take(r->AddGauge("segqat_train_learning_rate", "Latest learning rate of a running job.", {"job"}),
       &m->lr_);
  take(r->AddGauge("segqat_train_images_per_second", "Training throughput of a running job.",
                   {"job"}),
       &m->images_per_second_);
  take(r->AddHistogram("segqat_train_step_seconds", "Training step time.", short_buckets),
       &m->step_seconds_);
  take(r->AddGauge("segqat_eval_miou", "Latest evaluation mIoU of a job (0 to 1).", {"job"}),
       &m->miou_);
  take(r->AddCounter("segqat_grpc_requests_total", "gRPC requests by method and status code.",
                     {"method", "code"}),
       &m->grpc_requests_);
  take(r->AddHistogram("segqat_grpc_request_duration_seconds", "gRPC request duration.",
                       short_buckets, {"method"}),
       &m->grpc_duration_);
  take(r->AddCounter("segqat_artifact_read_bytes_total", "Artifact bytes sent to clients."),
       &m->artifact_bytes_);
  take(r->AddGauge("segqat_build_info", "segqat's version.", {"version"}), &m->build_info_);
  if (!st.ok()) return st;
  if (auto ps = metrics::RegisterProcessMetrics(r); !ps.ok()) return ps;
  m->build_info_->WithLabels({{"version", kVersion}}).Set(1);
  m->lease_expirations_->WithLabels();
  for (v1::JobKind k :
       {v1::TRAIN, v1::QUANT_TRAIN, v1::EVAL, v1::EXPORT, v1::PTQ, v1::SENSITIVITY, v1::DIFF}) {
    m->jobs_created_->WithLabels({{"kind", v1::JobKind_Name(k)}});
  }
  ServerMetrics* raw = m.get();
  r->AddCollector([raw] { raw->Collect(); });
  return m;
}

void ServerMetrics::Collect() {
  for (v1::JobState s :
       {v1::QUEUED, v1::RUNNING, v1::SUCCEEDED, v1::FAILED, v1::CANCELLING, v1::CANCELLED}) {
    auto count = store_->CountByState(s);
    jobs_->WithLabels({{"state", v1::JobState_Name(s)}})
        .Set(count.ok() ? static_cast<double>(*count) : 0);
  }
  for (const char* s : {"idle", "busy", "lost"}) workers_->WithLabels({{"state", s}}).Set(0);
  for (const auto& [state, n] : workers_by_state_())
    workers_->WithLabels({{"state", state}}).Set(n);
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  for (auto it = ended_.begin(); it != ended_.end();) {
    if (now - it->second < retention_) {
      ++it;
      continue;
    }
    const metrics::Labels job{{"job", it->first}};
    loss_->Remove(job);
    lr_->Remove(job);
    images_per_second_->Remove(job);
    miou_->Remove(job);
    it = ended_.erase(it);
  }
}

void ServerMetrics::JobCreated(v1::JobKind kind) {
  jobs_created_->WithLabels({{"kind", v1::JobKind_Name(kind)}}).Increment();
}

void ServerMetrics::JobStarted(const v1::Job& job) {
  queue_wait_->WithLabels().Observe(
      std::max(0.0, Seconds(job.start_time()) - Seconds(job.create_time())));
  std::lock_guard<std::mutex> lock(mu_);
  ended_.erase(JobIdOf(job.name()));
}

void ServerMetrics::JobEnded(const v1::Job& job) {
  if (job.has_start_time() && job.has_end_time()) {
    duration_->WithLabels().Observe(
        std::max(0.0, Seconds(job.end_time()) - Seconds(job.start_time())));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ended_[JobIdOf(job.name())] = std::chrono::steady_clock::now();
}

void ServerMetrics::Step(const std::string& job_id, double loss, double lr,
                         double images_per_second, double step_seconds) {
  const metrics::Labels job{{"job", job_id}};
  loss_->WithLabels(job).Set(loss);
  lr_->WithLabels(job).Set(lr);
  images_per_second_->WithLabels(job).Set(images_per_second);
  if (step_seconds > 0) step_seconds_->WithLabels().Observe(step_seconds);
}

void ServerMetrics::LeaseExpired() { lease_expirations_->WithLabels().Increment(); }

void ServerMetrics::WorkerRefused(const std::string& reason) {
  worker_refusals_->WithLabels({{"reason", reason}}).Increment();
}

void ServerMetrics::Evaluated(const std::string& job_id, double miou) {
  miou_->WithLabels({{"job", job_id}}).Set(miou);
}

void ServerMetrics::Rpc(const std::string& method, const std::string& code, double seconds) {
  grpc_requests_->WithLabels({{"method", method}, {"code", code}}).Increment();
  grpc_duration_->WithLabels({{"method", method}}).Observe(seconds);
}

void ServerMetrics::ArtifactBytesRead(int64_t bytes) {
  artifact_bytes_->WithLabels().Increment(static_cast<double>(bytes));
}

}  // namespace segqat::server
