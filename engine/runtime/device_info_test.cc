// Placement on devices: each local slot and each data-parallel rank trains on
// the CUDA ordinal its placement names (a fake device count stands in for
// GPUs where there are none), GPU ranks talk over NCCL and CPU ranks over
// Gloo, and the build reports what it was compiled with.
#include "engine/runtime/device_info.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "engine/runtime/job_runner.h"
#include "engine/train/collectives.h"

namespace segqat::runtime {
namespace {

TEST(PickDeviceTest, EachRankTrainsOnTheOrdinalItWasPlacedOn) {
  // A gang of four ranks on a machine with four GPUs, as the scheduler
  // places them: rank r gets ordinal r.
  std::vector<std::string> devices;
  for (int placed : {0, 1, 2, 3}) {
    auto d = PickDevice(/*use_gpu=*/true, placed, /*device_count=*/4);
    ASSERT_TRUE(d.ok()) << d.status();
    devices.push_back(d->str());
    EXPECT_EQ(BackendFor(*d), CollectiveBackend::kNccl) << d->str();
  }
  EXPECT_EQ(devices, (std::vector<std::string>{"cuda:0", "cuda:1", "cuda:2", "cuda:3"}));
}

TEST(PickDeviceTest, CpuRanksUseGlooAndAMissingOrdinalIsNamed) {
  auto cpu = PickDevice(/*use_gpu=*/false, 3, /*device_count=*/0);
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->str(), "cpu");
  EXPECT_EQ(BackendFor(*cpu), CollectiveBackend::kGloo);
  EXPECT_STREQ(BackendName(BackendFor(*cpu)), "gloo");
  EXPECT_STREQ(BackendName(CollectiveBackend::kNccl), "nccl");

  auto none = PickDevice(true, 0, 0);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("no CUDA device is visible"), std::string::npos);
  auto beyond = PickDevice(true, 2, 2);
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(beyond.status().message().find("no CUDA device 2 on this machine (it has 2)"),
            std::string::npos)
      << beyond.status();
}

TEST(PickDeviceTest, TheRealCountDecidesOnThisMachine) {
  const int n = static_cast<int>(torch::cuda::device_count());
  EXPECT_EQ(PickDevice(true, 0).ok(), n > 0);
}

TEST(RuntimeInfoTest, VersionsAreReadAsTheirLibrariesNumberThem) {
  EXPECT_EQ(CudaVersionString(13000), "13.0");
  EXPECT_EQ(CudaVersionString(12080), "12.8");
  EXPECT_EQ(CudaVersionString(0), "");
  EXPECT_EQ(CudnnVersionString(91900), "9.19.0");
  EXPECT_EQ(CudnnVersionString(90102), "9.1.2");
}

TEST(RuntimeInfoTest, TheBuildIsLibTorch211WithCuda13AndNccl) {
  const RuntimeInfo info = GetRuntimeInfo();
  EXPECT_EQ(info.libtorch, "2.11.0");
  EXPECT_EQ(info.cuda, "13.0");
  EXPECT_FALSE(info.cudnn.empty());
  EXPECT_FALSE(info.nccl.empty());
  EXPECT_EQ(info.cuda_devices.size(), torch::cuda::device_count());
  const std::string build = DescribeBuild(info);
  EXPECT_EQ(build.rfind("LibTorch 2.11.0, CUDA 13.0, cuDNN ", 0), 0u) << build;
  EXPECT_NE(build.find(", NCCL " + info.nccl), std::string::npos) << build;
}

}  // namespace
}  // namespace segqat::runtime
