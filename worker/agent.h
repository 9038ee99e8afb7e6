// Agent: a worker. It reports to segqatd through WorkerService.Synchronize
// (proto/segqat/v1/workers.proto) at the interval the server asks for, runs
// the job it is given on the engine (engine/runtime), sends the job's events
// with its reports, uploads its snapshots and outputs over RPC, and stops
// the job when told to. Remote workers (`segqat-worker serve`) and segqatd's
// embedded workers (--local-workers, over an in-process channel) are both
// agents: one code path.
//
// A job's inputs that name other jobs' artifacts ("jobs/ID/final") are
// fetched into <work_dir>/cache by digest; its dataset paths are read on
// this machine. It runs in <work_dir>/<job id>, resuming from the newest
// snapshot there or from the one the server names. A rank of a
// data-parallel job joins its peers through c10d (engine/train/collectives.h)
// at the master address the server gives; only rank 0 reports events and
// uploads.
#ifndef SEGQAT_WORKER_AGENT_H_
#define SEGQAT_WORKER_AGENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/runtime/device_info.h"
#include "segqat/v1/jobs.grpc.pb.h"
#include "segqat/v1/workers.grpc.pb.h"

namespace segqat::agent {

struct AgentOptions {
  std::string worker_id;  // unique and stable ([A-Za-z0-9._-], at most 63)
  std::string host;       // shown in `segqat workers`
  std::vector<int> gpus;  // CUDA ordinals this agent offers; empty: the CPU
  std::string work_dir;   // jobs' working directories and the input cache
  // Where the other ranks of a data-parallel job reach this worker when it
  // is rank 0 (its TCPStore listens on a free port of this machine).
  std::string address = "127.0.0.1";
  std::chrono::seconds rpc_deadline{60};
  // How long a data-parallel rank waits for its peers at the rendezvous and
  // in each collective before its job fails (--collective-timeout).
  std::chrono::seconds collective_timeout{120};
  // Where jobs may read (--data-root); empty: anywhere. A job's own
  // directory (its fetched inputs) is always allowed.
  std::vector<std::string> data_roots;
};

class Agent {
 public:
  Agent(std::shared_ptr<grpc::Channel> channel, AgentOptions options);
  ~Agent();

  // Works until *quit becomes true, then interrupts its job (which
  // snapshots), uploads the snapshot, reports and returns OK. Returns
  // FailedPrecondition at once when the server refuses this worker's
  // protocol version or id. Connection errors are retried.
  absl::Status Run(const std::atomic<bool>* quit);

 private:
  struct Job;
  void RunJob(Job* job);
  // Removes an ended job's local directory (its snapshots and inputs).
  void RemoveWorkDir(Job* job);
  void UploadOrLog(Job* job, const std::string& local, const std::string& name);

  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  AgentOptions options_;
};

}  // namespace segqat::agent

#endif  // SEGQAT_WORKER_AGENT_H_
