// The agent (worker/agent.h): Run, its Synchronize loop, and RunJob, one
// attempt (fetch inputs, join the peers, run, upload, report). Over 400
// lines because both work on the private Job state defined here; the
// pieces without it live beside it (devices.cc, work_dir.cc, snapshots.cc,
// transfer.cc, job_events.cc).
#include "worker/agent.h"

#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/job_name.h"
#include "engine/runtime/device_info.h"
#include "engine/runtime/job_runner.h"
#include "engine/train/collectives.h"
#include "job/artifact_layout.h"
#include "job/job_spec.h"
#include "worker/devices.h"
#include "worker/job_events.h"
#include "worker/snapshots.h"
#include "worker/transfer.h"
#include "worker/work_dir.h"

namespace segqat::agent {
namespace fs = std::filesystem;
namespace {

using Outcome = v1::WorkerReport::Finished::Outcome;

// The spec's request (job/job_spec.h) on the GPU the scheduler placed it.
absl::StatusOr<runtime::JobRequest> ToJobRequest(const v1::RunAssignment& run) {
  auto stated = job::FromSpec(run.spec());
  if (!stated.ok()) return stated.status();
  runtime::JobRequest r;
  static_cast<job::JobRequest&>(r) = *std::move(stated);
  r.use_gpu = !run.gpus().empty();
  r.gpu_index = run.gpus().empty() ? 0 : run.gpus(0);
  return r;
}

// A port that is free now, for a TCPStore this worker may serve as rank 0.
int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

struct Agent::Job {
  v1::RunAssignment run;
  std::string id;
  int rank = 0;
  int world = 1;
  std::string work_dir;
  std::unique_ptr<JobEvents> events;
  std::unique_ptr<SnapshotUploader> uploader;  // epoch snapshots, beside training
  std::atomic<bool> stop{false};
  std::atomic<bool> cancelled{false};
  std::atomic<bool> dropped{false};  // the lease is gone: upload nothing more
  std::mutex mu;
  bool finished = false;  // (mu)
  Outcome outcome = v1::WorkerReport::Finished::FAILED;
  std::string error;
  std::thread thread;

  void Finish(Outcome o, std::string why = "") {
    std::lock_guard<std::mutex> lock(mu);
    outcome = o;
    error = std::move(why);
    finished = true;
  }
  bool Finished() {
    std::lock_guard<std::mutex> lock(mu);
    return finished;
  }
};

Agent::Agent(std::shared_ptr<grpc::Channel> channel, AgentOptions options)
    : workers_(v1::WorkerService::NewStub(channel)),
      jobs_(v1::JobService::NewStub(channel)),
      options_(std::move(options)) {}

Agent::~Agent() = default;

void Agent::UploadOrLog(Job* job, const std::string& local, const std::string& name) {
  auto st = Upload(workers_.get(), options_.worker_id, job->run.lease(), local, name,
                   options_.rpc_deadline);
  if (absl::IsAborted(st)) job->dropped = true;
  if (!st.ok()) spdlog::warn("[job {}] {}", job->id, std::string(st.message()));
}

void Agent::RemoveWorkDir(Job* job) {
  std::error_code ec;
  fs::remove_all(job->work_dir, ec);
  if (ec) spdlog::warn("[job {}] cannot remove {}: {}", job->id, job->work_dir, ec.message());
}

void Agent::RunJob(Job* job) {
  const std::string log_path = (fs::path(job->work_dir) / job::kJobLog).string();
  auto upload = [&](const std::string& local, const std::string& name) {
    return Upload(workers_.get(), options_.worker_id, job->run.lease(), local, name,
                  options_.rpc_deadline);
  };
  auto fail = [&](const absl::Status& st) {
    job->uploader.reset();  // nothing more from the work dir, which may go
    if (job->dropped) return job->Finish(v1::WorkerReport::Finished::INTERRUPTED);
    if (job->world > 1 && absl::IsUnavailable(st)) {
      // A peer is gone: the gang goes back to the queue, not to FAILED.
      return job->Finish(v1::WorkerReport::Finished::INTERRUPTED,
                         absl::StrCat("a data-parallel peer was lost (", st.message(), ")"));
    }
    job->events->FlushLog();
    if (job->rank > 0) {
      return job->Finish(v1::WorkerReport::Finished::FAILED, std::string(st.message()));
    }
    std::ofstream(log_path, std::ios::app) << "FAILED: " << st.message() << "\n";
    UploadOrLog(job, log_path, job::kJobLog);
    RemoveWorkDir(job);
    job->Finish(v1::WorkerReport::Finished::FAILED, std::string(st.message()));
  };
  try {
    auto requested = ToJobRequest(job->run);
    if (!requested.ok()) return fail(requested.status());
    runtime::JobRequest request = *std::move(requested);
    if (!options_.data_roots.empty()) {
      std::vector<std::string> roots = options_.data_roots;
      roots.push_back(job->work_dir);
      request.read_roots = runtime::ReadRoots(roots);
    }
    job->events->OnLog(absl::StrCat(
        "attempt ", job->run.lease().fencing(), " on workers/", options_.worker_id, " (",
        request.use_gpu ? absl::StrCat("cuda:", request.gpu_index) : std::string("cpu"), ")"));
    const std::string cache = (fs::path(options_.work_dir) / "cache").string();
    auto resolve = [&](const std::string& key,
                       const std::string& value) -> absl::StatusOr<std::string> {
      if (!absl::StartsWith(value, "jobs/")) return value;
      const std::string rest = value.substr(5);
      const size_t slash = rest.find('/');
      if (slash == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(key, ": '", value, "' names no artifact"));
      }
      const std::string dest = (fs::path(job->work_dir) / "inputs" / rest).string();
      auto st = Fetch(jobs_.get(), rest.substr(0, slash), rest.substr(slash + 1), cache, dest,
                      options_.rpc_deadline);
      if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(key, ": ", st.message()));
      return dest;
    };
    auto cfg = runtime::PrepareJob(&request, resolve);
    if (!cfg.ok()) return fail(cfg.status());
    if (auto st = CheckTrainingFits(request, *cfg, job->world); !st.ok()) return fail(st);
    if (!job->run.snapshot().empty()) {
      // The newest snapshot uploaded by an earlier attempt, wherever it ran,
      // and the older ones the server keeps: one that cannot be fetched (its
      // stored bytes no longer match their digest) or read leaves the run to
      // resume from the next newest (runtime::NewestSnapshot picks it).
      std::vector<std::string> snapshots = {job->run.snapshot()};
      if (auto kept = ListSnapshots(jobs_.get(), job->id, options_.rpc_deadline); kept.ok()) {
        for (const std::string& s : *kept) {
          if (s != job->run.snapshot()) snapshots.push_back(s);
        }
      }
      absl::Status last;
      int fetched = 0;
      for (const std::string& snapshot : snapshots) {
        const std::string dest = (fs::path(job->work_dir) / fs::path(snapshot).filename()).string();
        last = Fetch(jobs_.get(), job->id, snapshot, cache, dest, options_.rpc_deadline);
        if (last.ok()) {
          ++fetched;
          job->events->OnLog(absl::StrCat("fetched snapshot ", snapshot));
        } else {
          job->events->OnLog(
              absl::StrCat("cannot fetch snapshot ", snapshot, ": ", last.message()));
        }
      }
      if (fetched == 0) return fail(last);
    }
    std::unique_ptr<Collectives> peers;
    if (job->world > 1) {
      const std::string& master = job->run.master();
      const size_t colon = master.rfind(':');
      DistributedOptions d;
      d.rank = job->rank;
      d.world_size = job->world;
      d.master_addr = master.substr(0, colon == std::string::npos ? 0 : colon);
      d.timeout = options_.collective_timeout;
      if (request.use_gpu) d.device = c10::Device(c10::kCUDA, request.gpu_index);
      if (colon == std::string::npos ||
          !absl::SimpleAtoi(master.substr(colon + 1), &d.master_port)) {
        return fail(absl::InvalidArgumentError(absl::StrCat("master: '", master, "'")));
      }
      job->events->OnLog(absl::StrCat("rank ", job->rank, " of ", job->world, " joins at ", master,
                                      " (", BackendName(BackendFor(d.device)), ")"));
      auto joined = ConnectCollectives(d);
      if (!joined.ok()) return fail(joined.status());
      peers = *std::move(joined);
      request.collectives = peers.get();
    }
    auto outcome = runtime::RunJob(request, *cfg, runtime::JobPaths::InWorkDir(job->work_dir),
                                   job->events.get(), &job->stop);
    if (!outcome.ok()) return fail(outcome.status());
    // The newest epoch snapshot in place before the job's last uploads (and
    // before "interrupted" becomes its resume point).
    job->uploader->Drain();
    if (job->uploader->superseded() > 0) {
      job->events->OnLog(absl::StrCat(job->uploader->superseded(),
                                      " snapshots were not uploaded: a newer one replaced each "
                                      "while the previous upload ran"));
    }
    job->uploader.reset();
    job->events->FlushLog();
    if (job->dropped) return job->Finish(v1::WorkerReport::Finished::INTERRUPTED);
    if (job->rank > 0) {
      // Rank 0 uploads and reports for the gang.
      return job->Finish(outcome->interrupted ? v1::WorkerReport::Finished::INTERRUPTED
                                              : v1::WorkerReport::Finished::SUCCEEDED);
    }
    if (outcome->interrupted) {
      const fs::path interrupted = fs::path(job->work_dir) / job::kInterrupted;
      std::error_code ec;
      if (fs::exists(interrupted, ec)) {
        // Its last file makes it the job's resume point on segqatd.
        if (auto st = Upload(workers_.get(), options_.worker_id, job->run.lease(),
                             interrupted.string(), job::kInterrupted, options_.rpc_deadline,
                             /*snapshot=*/true);
            !st.ok()) {
          spdlog::warn("[job {}] {} not uploaded: {}", job->id, job::kInterrupted,
                       std::string(st.message()));
        }
      }
      if (job->cancelled) UploadOrLog(job, log_path, job::kJobLog);
      return job->Finish(v1::WorkerReport::Finished::INTERRUPTED);
    }
    for (const std::string& out : outcome->outputs) {
      auto st = upload((fs::path(job->work_dir) / out).string(), out);
      if (!st.ok()) return fail(st);
    }
    if (auto st = upload(log_path, job::kJobLog); !st.ok()) return fail(st);
    RemoveWorkDir(job);  // everything worth keeping is on the server now
    job->Finish(v1::WorkerReport::Finished::SUCCEEDED);
  } catch (const std::bad_alloc&) {
    fail(absl::ResourceExhaustedError("out of memory"));
  } catch (const std::exception& e) {
    fail(absl::InternalError(absl::StrCat("the engine failed: ", e.what())));
  }
}

absl::Status Agent::Run(const std::atomic<bool>* quit) {
  const runtime::RuntimeInfo runtime_info = runtime::GetRuntimeInfo();
  const std::vector<v1::Device> devices = DescribeDevices(options_.gpus, runtime_info);
  const std::string runtime_build = runtime::DescribeBuild(runtime_info);
  int rendezvous_port = PickFreePort();
  std::unique_ptr<Job> job;
  auto interval = std::chrono::milliseconds(1000);
  Backoff retry(std::chrono::milliseconds(200), interval);
  bool warned = false;
  auto drop_job = [&] {
    if (!job) return;
    job->dropped = true;
    job->stop = true;
    if (job->thread.joinable()) job->thread.join();
    job.reset();
  };
  std::optional<std::chrono::steady_clock::time_point> quit_at;
  while (true) {
    const bool quitting = quit->load();
    if (quitting && !job) return absl::OkStatus();
    if (quitting && job) job->stop = true;
    if (quitting && !quit_at) quit_at = std::chrono::steady_clock::now();
    if (quitting && job && job->Finished() &&
        std::chrono::steady_clock::now() - *quit_at > std::chrono::seconds(20)) {
      // A report the server keeps refusing: stop anyway; its lease expires
      // there and the job goes back to the queue.
      spdlog::warn("worker {}: stopping with job {} unreported", options_.worker_id, job->id);
      drop_job();
      return absl::OkStatus();
    }
    v1::SynchronizeRequest req;
    req.set_protocol(v1::WORKER_PROTOCOL_V1);
    req.set_worker_id(options_.worker_id);
    req.set_host(options_.host);
    req.set_draining(quitting);
    req.set_address(options_.address);
    req.set_rendezvous_port(rendezvous_port);
    req.set_runtime(runtime_build);
    for (const auto& d : devices) *req.add_devices() = d;
    bool reported_finished = false;
    if (!job) {
      req.mutable_report()->mutable_idle();
    } else {
      std::lock_guard<std::mutex> lock(job->mu);
      // Rank 0 speaks for a data-parallel job.
      auto pending =
          job->events && job->rank == 0 ? job->events->Pending() : std::vector<v1::JobEvent>{};
      if (job->finished) {
        auto* f = req.mutable_report()->mutable_finished();
        *f->mutable_lease() = job->run.lease();
        for (auto& e : pending) *f->add_events() = std::move(e);
        f->set_outcome(job->outcome);
        f->set_error(job->error);
        reported_finished = true;
      } else {
        auto* r = req.mutable_report()->mutable_running();
        *r->mutable_lease() = job->run.lease();
        for (auto& e : pending) *r->add_events() = std::move(e);
      }
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    v1::SynchronizeResponse resp;
    const absl::Status st = FromGrpc(workers_->Synchronize(&ctx, req, &resp));
    if (st.ok()) {
      warned = false;
      retry.Reset();
      if (resp.report_interval_ms() > 0) {
        interval = std::chrono::milliseconds(resp.report_interval_ms());
      }
      if (job && job->events) job->events->Acknowledge(resp.acked_seq());
      if (reported_finished) {
        if (job->thread.joinable()) job->thread.join();
        if (job->world > 1) rendezvous_port = PickFreePort();
        job.reset();
      }
      if (resp.has_run() && !job) {
        job = std::make_unique<Job>();
        job->run = resp.run();
        job->id = JobIdOf(resp.run().lease().job());
        if (quit->load()) {
          // Given a job while stopping: hand it straight back.
          job->Finish(v1::WorkerReport::Finished::INTERRUPTED);
          continue;
        }
        job->rank = resp.run().lease().rank();
        job->world = std::max(1, resp.run().world_size());
        std::error_code ec;
        if (job->world > 1) {
          // Every rank starts the attempt from the same uploaded snapshot.
          job->work_dir =
              (fs::path(options_.work_dir) / absl::StrCat(job->id, "-rank", job->rank)).string();
          fs::remove_all(job->work_dir, ec);
        } else {
          job->work_dir = (fs::path(options_.work_dir) / job->id).string();
        }
        fs::create_directories(job->work_dir, ec);
        Job* raw = job.get();
        job->uploader = std::make_unique<SnapshotUploader>(
            [this, raw](const std::string& path, const std::string& name) {
              return Upload(workers_.get(), options_.worker_id, raw->run.lease(), path, name,
                            options_.rpc_deadline, /*snapshot=*/true);
            },
            [raw](const std::string& name, const absl::Status& up) {
              if (absl::IsAborted(up)) raw->dropped = true;
              if (!up.ok()) {
                spdlog::warn("[job {}] {} not uploaded: {}", raw->id, name,
                             std::string(up.message()));
                return;
              }
              // Whole on segqatd, and its resume point: older ones serve no resume.
              KeepNewestLocalSnapshots(raw->work_dir, 2);
            });
        job->events = std::make_unique<JobEvents>(
            job->id, (fs::path(job->work_dir) / job::kJobLog).string(),
            [raw](const SnapshotEvent& e) {
              // On the training thread: queue it and return.
              if (!IsEpochSnapshot(e.name) || raw->dropped) return;
              raw->uploader->Offer(e.path, absl::StrCat(job::kSnapshots, "/", e.name));
            });
        job->thread = std::thread([this, raw] { RunJob(raw); });
        continue;  // report right away that it runs
      }
      if (resp.has_stop() && job && resp.stop().lease().fencing() == job->run.lease().fencing()) {
        job->cancelled = resp.stop().cancelled();
        job->stop = true;
      }
    } else if (absl::IsAborted(st)) {
      spdlog::warn("worker {}: {}; dropping the job", options_.worker_id,
                   std::string(st.message()));
      drop_job();
      continue;
    } else if (absl::IsFailedPrecondition(st) || absl::IsInvalidArgument(st) ||
               absl::IsUnauthenticated(st) || absl::IsPermissionDenied(st)) {
      spdlog::error("worker {}: the server refused it: {}", options_.worker_id,
                    std::string(st.message()));
      drop_job();
      return st;
    } else {
      if (!warned) {
        spdlog::warn("worker {}: cannot reach the server ({}); retrying", options_.worker_id,
                     std::string(st.message()));
      }
      warned = true;
      // Never quieter than the report interval: a server that answers with an
      // error (a full disk) must still see this worker, or its lease expires.
      retry.set_max(interval);
      std::this_thread::sleep_for(retry.Next());
      if (quit->load() && job && !job->Finished()) job->stop = true;
      continue;
    }
    // Sleep until the next report is due, the job ends, or we are told to quit.
    const auto due = std::chrono::steady_clock::now() + interval;
    while (std::chrono::steady_clock::now() < due) {
      if (quit->load() != quitting || (job && job->Finished())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace segqat::agent
