// Collectives: what data-parallel training needs from its ranks, behind one
// interface: a world of one (no communication) or c10d's process groups,
// NCCL between ranks on CUDA devices and Gloo between CPU ranks, with a
// TCPStore rendezvous at rank 0 (c10d_collectives.cc, the only file that
// includes torch/csrc/distributed). Every rank must make the same calls
// in the same order with tensors of the same shapes. Not thread-safe.
#ifndef SEGQAT_ENGINE_TRAIN_COLLECTIVES_H_
#define SEGQAT_ENGINE_TRAIN_COLLECTIVES_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace segqat {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place, across ranks. Unavailable when a rank is gone or the timeout
  // passes.
  virtual absl::Status AllReduceSum(at::Tensor& t) = 0;
  virtual absl::Status AllReduceMax(at::Tensor& t) = 0;
  virtual absl::Status Broadcast(at::Tensor& t, int root) = 0;
};

// A world of one: every call is a no-op.
std::unique_ptr<Collectives> LocalCollectives();

struct DistributedOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";  // where rank 0 serves the TCPStore
  int master_port = 29500;
  std::chrono::seconds timeout{600};  // rendezvous and each collective
  // The device this rank trains on; every rank of a job is on the same kind
  // (the scheduler places a GPU job on GPUs only).
  c10::Device device = c10::Device(c10::kCPU);
};

enum class CollectiveBackend { kGloo, kNccl };
// NCCL for a rank on a CUDA device, Gloo for a CPU rank.
CollectiveBackend BackendFor(c10::Device device);
const char* BackendName(CollectiveBackend backend);

// Joins the group (blocks until every rank has joined) on BackendFor(device):
// the tensors passed later live on that device. InvalidArgument for bad
// options, Unavailable when the rendezvous fails.
absl::StatusOr<std::unique_ptr<Collectives>> ConnectCollectives(const DistributedOptions& options);

// The NCCL version LibTorch was built with ("2.28.9"); "" without NCCL.
std::string NcclVersion();

// Averages `tensors` across ranks in place, in flat buckets of at most
// `bucket_bytes` (one all-reduce per bucket). Floating-point tensors only.
absl::Status AllReduceMean(Collectives& c, const std::vector<at::Tensor>& tensors,
                           int64_t bucket_bytes = int64_t{25} << 20);
// Rank `root`'s values of `tensors` on every rank.
absl::Status BroadcastAll(Collectives& c, const std::vector<at::Tensor>& tensors, int root);
// True on every rank when `flag` is true on any.
absl::StatusOr<bool> AnyRank(Collectives& c, bool flag);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_COLLECTIVES_H_
