#include "worker/devices.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

namespace segqat::agent {

std::vector<v1::Device> DescribeDevices(const std::vector<int>& gpus,
                                        const runtime::RuntimeInfo& info) {
  std::vector<v1::Device> out;
  for (int g : gpus) {
    v1::Device d;
    d.set_kind("cuda");
    d.set_index(g);
    d.set_description(absl::StrCat("CUDA device ", g));
    for (const runtime::CudaDeviceInfo& visible : info.cuda_devices) {
      if (visible.index != g) continue;
      d.set_description(visible.name);
      d.set_memory_bytes(visible.memory_bytes);
      d.set_compute_capability(visible.compute_capability);
    }
    out.push_back(d);
  }
  if (out.empty()) {
    v1::Device d;
    d.set_kind("cpu");
    d.set_description(absl::StrCat(std::max(1u, std::thread::hardware_concurrency()), " cores"));
    out.push_back(d);
  }
  return out;
}

absl::Status CheckTrainingFits(const runtime::JobRequest& request, const Config& cfg, int world) {
  if (!job::Trains(request.kind)) return absl::OkStatus();
  const std::vector<int64_t>& crop = cfg.Ints("TRAIN_CROP_SIZE");
  const int64_t batch = (cfg.Int("BATCH_SIZE") + world - 1) / std::max(1, world);
  const int64_t need = runtime::EstimateTrainingBytes(
      batch, crop[0], crop[1], request.kind == runtime::JobKind::kQuantTrain);
  int64_t have = 0;
  std::string where = "this worker";
  if (request.use_gpu) {
    where = absl::StrCat("cuda:", request.gpu_index);
    for (const runtime::CudaDeviceInfo& d : runtime::GetRuntimeInfo().cuda_devices) {
      if (d.index == request.gpu_index) have = d.memory_bytes;
    }
  } else {
    have = runtime::HostMemoryBytes();
  }
  if (have <= 0 || need <= have) return absl::OkStatus();
  auto gib = [](int64_t bytes) {
    return absl::StrCat(std::round(static_cast<double>(bytes) * 10 / (1 << 30)) / 10);
  };
  return absl::FailedPreconditionError(
      absl::StrCat("BATCH_SIZE x TRAIN_CROP_SIZE: training ", batch, " crop", batch == 1 ? "" : "s",
                   " of ", crop[0], "x", crop[1], " a step needs about ", gib(need), " GiB, and ",
                   where, " has ", gib(have), " GiB; lower BATCH_SIZE or TRAIN_CROP_SIZE"));
}

}  // namespace segqat::agent
