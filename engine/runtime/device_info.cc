// Reads LibTorch's CUDA hooks and device properties. Includes ATen/cuda (and
// through it the CUDA runtime's headers, from the toolkit); the libraries
// behind them come from the torch wheel.
#include "engine/runtime/device_info.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/headeronly/version.h>

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/train/collectives.h"

namespace segqat::runtime {

std::string CudaVersionString(long version) {
  if (version <= 0) return "";
  return absl::StrCat(version / 1000, ".", (version % 1000) / 10);
}

std::string CudnnVersionString(long version) {
  if (version <= 0) return "";
  // cuDNN 9 numbers its versions major*10000 + minor*100 + patch.
  return absl::StrCat(version / 10000, ".", (version % 10000) / 100, ".", version % 100);
}

int64_t HostMemoryBytes() {
  int64_t best = 0;
  auto consider = [&best](int64_t bytes) {
    if (bytes > 0 && (best == 0 || bytes < best)) best = bytes;
  };
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemTotal:") consider(kb * 1024);
    meminfo.ignore(256, '\n');
  }
  for (const char* limit :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(limit);
    std::string text;
    int64_t bytes = 0;
    if (in >> text && absl::SimpleAtoi(text, &bytes)) consider(bytes);  // "max": no limit
  }
  return best;
}

int64_t EstimateTrainingBytes(int64_t batch, int64_t width, int64_t height, bool quant) {
  const double pixels =
      static_cast<double>(batch) * static_cast<double>(width) * static_cast<double>(height);
  const double per_pixel = quant ? 3.8e3 : 2.9e3;
  return static_cast<int64_t>(0.8 * (1 << 30) + pixels * per_pixel);
}

RuntimeInfo GetRuntimeInfo() {
  RuntimeInfo info;
  info.libtorch = TORCH_VERSION;
  try {
    const auto& hooks = at::detail::getCUDAHooks();
    if (hooks.hasCUDART()) {
      info.cuda = CudaVersionString(hooks.versionCUDART());
      info.cudnn = CudnnVersionString(hooks.versionCuDNN());
    }
  } catch (const std::exception&) {
    // A build without CUDA: its hooks throw; the versions stay empty.
  }
  info.nccl = NcclVersion();
  try {
    const size_t n = torch::cuda::device_count();
    for (size_t i = 0; i < n; ++i) {
      const cudaDeviceProp* p = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i));
      CudaDeviceInfo d;
      d.index = static_cast<int>(i);
      d.name = p->name;
      d.memory_bytes = static_cast<int64_t>(p->totalGlobalMem);
      d.compute_capability = absl::StrCat(p->major, ".", p->minor);
      info.cuda_devices.push_back(std::move(d));
    }
  } catch (const std::exception&) {
    // No driver or no device: nothing is visible.
  }
  return info;
}

std::string DescribeBuild(const RuntimeInfo& info) {
  std::vector<std::string> parts = {absl::StrCat("LibTorch ", info.libtorch)};
  if (!info.cuda.empty()) parts.push_back(absl::StrCat("CUDA ", info.cuda));
  if (!info.cudnn.empty()) parts.push_back(absl::StrCat("cuDNN ", info.cudnn));
  if (!info.nccl.empty()) parts.push_back(absl::StrCat("NCCL ", info.nccl));
  return absl::StrJoin(parts, ", ");
}

}  // namespace segqat::runtime
