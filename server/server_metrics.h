// ServerMetrics: every metric family segqatd exports, built once in one
// Registry, and the hooks the service, the scheduler and the workers call.
// Jobs' own series (loss, learning rate, throughput, mIoU, labelled by job)
// are dropped `retention` after the job ends, so labels stay bounded.
// Thread-safe.
#ifndef SEGQAT_SERVER_SERVER_METRICS_H_
#define SEGQAT_SERVER_SERVER_METRICS_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "metrics/registry.h"
#include "segqat/v1/jobs.pb.h"

namespace segqat::server {

class JobStore;

class ServerMetrics {
 public:
  // `workers_by_state` is read at scrape time (state -> count).
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      metrics::Registry* registry, JobStore* store,
      std::function<std::map<std::string, int>()> workers_by_state,
      std::chrono::seconds retention = std::chrono::seconds(300));

  void JobCreated(v1::JobKind kind);
  void JobStarted(const v1::Job& job);  // observes the queue wait
  void JobEnded(const v1::Job& job);    // observes the duration; schedules series removal
  void Step(const std::string& job_id, double loss, double lr, double images_per_second,
            double step_seconds);
  void Evaluated(const std::string& job_id, double miou);
  void LeaseExpired();  // a worker stopped reporting; its job was requeued
  // A worker call refused for its identity: "worker_id" (an id its
  // credentials do not name), "lease" (a stale or forged lease) or "role"
  // (a caller that may not speak as a worker).
  void WorkerRefused(const std::string& reason);
  void Rpc(const std::string& method, const std::string& code, double seconds);
  void ArtifactBytesRead(int64_t bytes);

 private:
  ServerMetrics() = default;
  void Collect();  // at scrape time

  JobStore* store_ = nullptr;
  std::function<std::map<std::string, int>()> workers_by_state_;
  std::chrono::seconds retention_{300};
  metrics::Family<metrics::Gauge>* jobs_ = nullptr;
  metrics::Family<metrics::Counter>* jobs_created_ = nullptr;
  metrics::Family<metrics::Histogram>* queue_wait_ = nullptr;
  metrics::Family<metrics::Histogram>* duration_ = nullptr;
  metrics::Family<metrics::Gauge>* workers_ = nullptr;
  metrics::Family<metrics::Counter>* lease_expirations_ = nullptr;
  metrics::Family<metrics::Counter>* worker_refusals_ = nullptr;
  metrics::Family<metrics::Gauge>* loss_ = nullptr;
  metrics::Family<metrics::Gauge>* lr_ = nullptr;
  metrics::Family<metrics::Gauge>* images_per_second_ = nullptr;
  metrics::Family<metrics::Histogram>* step_seconds_ = nullptr;
  metrics::Family<metrics::Gauge>* miou_ = nullptr;
  metrics::Family<metrics::Counter>* grpc_requests_ = nullptr;
  metrics::Family<metrics::Histogram>* grpc_duration_ = nullptr;
  metrics::Family<metrics::Counter>* artifact_bytes_ = nullptr;
  metrics::Family<metrics::Gauge>* build_info_ = nullptr;

  std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> ended_;  // job -> when
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_SERVER_METRICS_H_
