// Collectives over c10d: a TCPStore served by rank 0 for the rendezvous and
// ProcessGroupNCCL (ranks on CUDA devices) or ProcessGroupGloo (CPU ranks)
// for the collectives. The only file that includes torch/csrc/distributed.
#include <torch/csrc/distributed/c10d/NCCLUtils.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "absl/strings/str_cat.h"
#include "engine/train/collectives.h"

namespace segqat {
namespace {

class C10d final : public Collectives {
 public:
  C10d(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::Backend> group, int rank,
       int world)
      : store_(std::move(store)), group_(std::move(group)), rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  absl::Status AllReduceSum(at::Tensor& t) override { return Reduce(t, c10d::ReduceOp::SUM); }
  absl::Status AllReduceMax(at::Tensor& t) override { return Reduce(t, c10d::ReduceOp::MAX); }
  absl::Status Broadcast(at::Tensor& t, int root) override {
    std::vector<at::Tensor> ts{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return Wait([&] { return group_->broadcast(ts, o); }, "broadcast");
  }

 private:
  absl::Status Reduce(at::Tensor& t, c10d::ReduceOp op) {
    std::vector<at::Tensor> ts{t};
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    return Wait([&] { return group_->allreduce(ts, o); }, "all-reduce");
  }
  template <typename F>
  absl::Status Wait(F start, const char* what) {
    try {
      start()->wait();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("data-parallel ", what, " failed (a rank is gone?): ", e.what()));
    }
  }
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> group_;
  int rank_, world_;
};

c10::intrusive_ptr<c10d::Backend> GlooGroup(const c10::intrusive_ptr<c10d::Store>& store,
                                            const DistributedOptions& options) {
  auto go = c10d::ProcessGroupGloo::Options::create(options.timeout);
  const bool loopback = options.master_addr == "127.0.0.1" || options.master_addr == "localhost";
  go->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                 : c10d::ProcessGroupGloo::createDefaultDevice());
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, options.rank, options.world_size, go);
}

c10::intrusive_ptr<c10d::Backend> NcclGroup(const c10::intrusive_ptr<c10d::Store>& store,
                                            const DistributedOptions& options) {
  auto no = c10d::ProcessGroupNCCL::Options::create();
  no->timeout = options.timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, options.rank, options.world_size, no);
}

}  // namespace

std::string NcclVersion() {
  try {
    return c10d::getNcclVersion();
  } catch (const std::exception&) {
    return "";
  }
}

absl::StatusOr<std::unique_ptr<Collectives>> ConnectCollectives(const DistributedOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", options.rank, " of a world of ", options.world_size));
  }
  if (options.master_port < 1 || options.master_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("master port ", options.master_port));
  }
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(options.master_port);
    so.isServer = options.rank == 0;
    so.numWorkers = static_cast<size_t>(options.world_size);
    so.waitWorkers = true;
    so.timeout = options.timeout;
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::TCPStore>(options.master_addr, so);
    auto group = BackendFor(options.device) == CollectiveBackend::kNccl ? NcclGroup(store, options)
                                                                        : GlooGroup(store, options);
    return std::unique_ptr<Collectives>(new C10d(store, group, options.rank, options.world_size));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("data-parallel rendezvous at ", options.master_addr,
                                               ":", options.master_port, " failed: ", e.what()));
  }
}

}  // namespace segqat
