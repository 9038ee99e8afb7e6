// SyncBatchNorm2d across two Gloo ranks (threads of this process, on
// loopback) against torch's BatchNorm2d on the whole batch in one process:
// outputs, running statistics and gradients must be those of the global batch.
#include "engine/train/sync_batch_norm.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/nn/modules/batchnorm.h>
#include <unistd.h>

#include <thread>

namespace segqat {
namespace {

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

struct RankResult {
  at::Tensor y, grad_x, grad_w, grad_b, running_mean, running_var;
  absl::Status status;
};

constexpr int64_t kChannels = 3;

void SetAffine(torch::nn::BatchNorm2dImpl& bn) {
  bn.weight.data().copy_(at::tensor({0.7f, 1.2f, 0.9f}));
  bn.bias.data().copy_(at::tensor({0.1f, -0.3f, 0.2f}));
}

// One rank: its half of x, the shared upstream gradient g, two steps so the
// running statistics and the shift (running_mean) move.
void RunRank(int rank, int port, const at::Tensor& x, const at::Tensor& g, RankResult* out) {
  DistributedOptions d;
  d.rank = rank;
  d.world_size = 2;
  d.master_port = port;
  d.timeout = std::chrono::seconds(30);
  auto comm = ConnectCollectives(d);
  if (!comm.ok()) {
    out->status = comm.status();
    return;
  }
  models::NormOptions norm;
  norm.momentum = 0.1;
  auto bn = models::BatchNorm(kChannels, norm);
  SetAffine(*bn);
  absl::Status error;
  EXPECT_EQ(models::SetWorldSum(*bn, CollectiveWorldSum(**comm, &error)), 1);
  bn->train();
  const int64_t half = x.size(0) / 2;
  for (int step = 0; step < 2; ++step) {
    at::Tensor xr = x.narrow(0, rank * half, half).clone().requires_grad_(true);
    bn->weight.mutable_grad() = at::Tensor();
    bn->bias.mutable_grad() = at::Tensor();
    at::Tensor y = bn->forward(xr);
    (y * g.narrow(0, rank * half, half)).sum().backward();
    out->y = y.detach();
    out->grad_x = xr.grad();
  }
  out->grad_w = bn->weight.grad();
  out->grad_b = bn->bias.grad();
  out->running_mean = bn->running_mean.clone();
  out->running_var = bn->running_var.clone();
  out->status = error;
}

TEST(SyncBatchNormTest, TwoRanksComputeTheGlobalBatchStatistics) {
  torch::manual_seed(3);
  // Channels with a large mean, where E[x^2] - E[x]^2 without a shift loses digits.
  const at::Tensor x = at::randn({4, kChannels, 5, 7}, at::kDouble).to(at::kFloat) * 3 +
                       at::tensor({40.0f, -2.0f, 0.5f}).view({1, kChannels, 1, 1});
  const at::Tensor g = at::randn({4, kChannels, 5, 7});

  // The reference: torch's BatchNorm2d on the whole batch, in one process.
  torch::nn::BatchNorm2d ref(torch::nn::BatchNorm2dOptions(kChannels).momentum(0.1));
  SetAffine(*ref);
  ref->train();
  at::Tensor ref_y, ref_grad_x;
  for (int step = 0; step < 2; ++step) {
    at::Tensor xr = x.clone().requires_grad_(true);
    ref->weight.mutable_grad() = at::Tensor();
    ref->bias.mutable_grad() = at::Tensor();
    ref_y = ref->forward(xr);
    (ref_y * g).sum().backward();
    ref_grad_x = xr.grad();
  }

  const int port = FreePort();
  RankResult r0, r1;
  std::thread t0(RunRank, 0, port, std::cref(x), std::cref(g), &r0);
  std::thread t1(RunRank, 1, port, std::cref(x), std::cref(g), &r1);
  t0.join();
  t1.join();
  ASSERT_TRUE(r0.status.ok()) << r0.status;
  ASSERT_TRUE(r1.status.ok()) << r1.status;

  const auto close = [](const at::Tensor& a, const at::Tensor& b) {
    return at::allclose(a, b, /*rtol=*/1e-4, /*atol=*/1e-4);
  };
  EXPECT_TRUE(close(at::cat({r0.y, r1.y}), ref_y));
  EXPECT_TRUE(close(at::cat({r0.grad_x, r1.grad_x}), ref_grad_x));
  // Each rank's parameter gradient is its slice's share; their sum (what the
  // trainer's average, times the world size, is) is the whole batch's.
  EXPECT_TRUE(close(r0.grad_w + r1.grad_w, ref->weight.grad()));
  EXPECT_TRUE(close(r0.grad_b + r1.grad_b, ref->bias.grad()));
  for (const RankResult* r : {&r0, &r1}) {
    EXPECT_TRUE(close(r->running_mean, ref->running_mean)) << r->running_mean;
    EXPECT_TRUE(close(r->running_var, ref->running_var)) << r->running_var;
  }
  // Per-rank statistics would differ from the global ones: the test can fail.
  const at::Tensor half_mean = x.narrow(0, 0, 2).mean({0, 2, 3});
  EXPECT_FALSE(close(half_mean, x.mean({0, 2, 3})));
}

TEST(SyncBatchNormTest, WithoutAWorldSumItIsTorchsBatchNorm) {
  auto bn = models::BatchNorm(kChannels, models::NormOptions{});
  torch::nn::BatchNorm2d ref(torch::nn::BatchNorm2dOptions(kChannels).momentum(0.01));
  const at::Tensor x = at::randn({2, kChannels, 4, 4});
  EXPECT_TRUE(at::equal(bn->forward(x), ref->forward(x)));
  EXPECT_TRUE(at::equal(bn->running_var, ref->running_var));
}

}  // namespace
}  // namespace segqat
