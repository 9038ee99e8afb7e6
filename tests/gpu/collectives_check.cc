// The data-parallel collectives on a GPU machine (scripts/gpu-check.sh): one
// NCCL all-reduce with a single rank on cuda:0 (one GPU cannot hold two NCCL
// ranks), then a 2-rank Gloo group (two threads) all-reducing CUDA tensors.
// Prints each result; exit 0 when every sum is right, 1 when one is wrong or a
// group fails, 2 when no GPU is visible.
//   gpu_collectives_check [--port P]
#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "engine/train/collectives.h"

namespace {

bool Expect(const char* what, const at::Tensor& t, double want) {
  const double got = t.cpu().max().item<double>();
  const bool ok = t.cpu().min().item<double>() == want && got == want;
  std::printf("  %-44s on %s: %.1f (want %.1f) %s\n", what, t.device().str().c_str(), got, want,
              ok ? "ok" : "WRONG");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 29650;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
  }
  if (torch::cuda::device_count() == 0) {
    std::printf("gpu_collectives_check: no GPU visible\n");
    return 2;
  }
  const c10::Device gpu(c10::kCUDA, 0);
  bool ok = true;

  segqat::DistributedOptions nccl;
  nccl.device = gpu;
  nccl.master_port = port;
  nccl.timeout = std::chrono::seconds(60);
  std::printf("NCCL %s, one rank on %s (backend %s)\n", segqat::NcclVersion().c_str(),
              gpu.str().c_str(), segqat::BackendName(segqat::BackendFor(gpu)));
  auto one = segqat::ConnectCollectives(nccl);
  if (!one.ok()) {
    std::printf("  NCCL group failed: %s\n", std::string(one.status().message()).c_str());
    return 1;
  }
  at::Tensor t = at::full({1024}, 3.0, at::TensorOptions().device(gpu));
  auto st = (*one)->AllReduceSum(t);
  ok = st.ok() && Expect("all-reduce sum, world 1", t, 3.0) && ok;
  if (!st.ok()) std::printf("  %s\n", std::string(st.message()).c_str());

  std::printf("Gloo, two ranks (threads), CUDA tensors\n");
  bool rank_ok[2] = {false, false};
  auto rank = [&](int r) {
    segqat::DistributedOptions g;
    g.rank = r;
    g.world_size = 2;
    g.master_port = port + 1;
    g.timeout = std::chrono::seconds(60);  // device stays CPU: the Gloo group
    auto c = segqat::ConnectCollectives(g);
    if (!c.ok()) {
      std::printf("  rank %d: %s\n", r, std::string(c.status().message()).c_str());
      return;
    }
    at::Tensor sum = at::full({1024}, r + 1.0, at::TensorOptions().device(gpu));
    at::Tensor max = sum.clone();
    rank_ok[r] =
        (*c)->AllReduceSum(sum).ok() && (*c)->AllReduceMax(max).ok() &&
        Expect(r == 0 ? "rank 0: all-reduce sum 1+2" : "rank 1: all-reduce sum 1+2", sum, 3.0) &&
        Expect(r == 0 ? "rank 0: all-reduce max" : "rank 1: all-reduce max", max, 2.0);
  };
  std::thread r1(rank, 1);
  rank(0);
  r1.join();
  ok = ok && rank_ok[0] && rank_ok[1];
  std::printf("gpu_collectives_check: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
