#include "engine/train/collectives.h"

#include <ATen/ATen.h>

namespace segqat {
namespace {

class Local final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  absl::Status AllReduceSum(at::Tensor&) override { return absl::OkStatus(); }
  absl::Status AllReduceMax(at::Tensor&) override { return absl::OkStatus(); }
  absl::Status Broadcast(at::Tensor&, int) override { return absl::OkStatus(); }
};

// Flattens `bucket` into one tensor, reduces it, and copies the mean back.
absl::Status ReduceBucket(Collectives& c, const std::vector<at::Tensor>& bucket) {
  if (bucket.empty()) return absl::OkStatus();
  std::vector<at::Tensor> flat;
  flat.reserve(bucket.size());
  for (const at::Tensor& t : bucket) flat.push_back(t.reshape({-1}));
  at::Tensor all = at::cat(flat);
  if (auto st = c.AllReduceSum(all); !st.ok()) return st;
  all.div_(c.world_size());
  int64_t offset = 0;
  for (const at::Tensor& t : bucket) {
    const int64_t n = t.numel();
    t.copy_(all.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<Collectives> LocalCollectives() { return std::make_unique<Local>(); }

CollectiveBackend BackendFor(c10::Device device) {
  return device.is_cuda() ? CollectiveBackend::kNccl : CollectiveBackend::kGloo;
}

const char* BackendName(CollectiveBackend backend) {
  return backend == CollectiveBackend::kNccl ? "nccl" : "gloo";
}

absl::Status AllReduceMean(Collectives& c, const std::vector<at::Tensor>& tensors,
                           int64_t bucket_bytes) {
  if (c.world_size() == 1) return absl::OkStatus();
  std::vector<at::Tensor> bucket;
  int64_t bytes = 0;
  for (const at::Tensor& t : tensors) {
    if (!t.defined()) continue;
    const int64_t size = t.numel() * static_cast<int64_t>(t.element_size());
    if (!bucket.empty() &&
        (bytes + size > bucket_bytes || bucket.front().scalar_type() != t.scalar_type())) {
      if (auto st = ReduceBucket(c, bucket); !st.ok()) return st;
      bucket.clear();
      bytes = 0;
    }
    bucket.push_back(t);
    bytes += size;
  }
  return ReduceBucket(c, bucket);
}

absl::Status BroadcastAll(Collectives& c, const std::vector<at::Tensor>& tensors, int root) {
  if (c.world_size() == 1) return absl::OkStatus();
  for (const at::Tensor& t : tensors) {
    if (!t.defined()) continue;
    at::Tensor dense = t.contiguous();
    if (auto st = c.Broadcast(dense, root); !st.ok()) return st;
    if (!dense.is_same(t)) t.copy_(dense);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> AnyRank(Collectives& c, bool flag) {
  if (c.world_size() == 1) return flag;
  at::Tensor t = at::full({1}, flag ? 1 : 0, at::kInt);
  if (auto st = c.AllReduceMax(t); !st.ok()) return st;
  return t.item<int>() != 0;
}

}  // namespace segqat
