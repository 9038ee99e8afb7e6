// Reads LibTorch's CUDA hooks and device properties. Includes ATen/cuda (and
// through it the CUDA runtime's headers, from the toolkit); the libraries
// behind them come from the torch wheel.
#include "worker/runtime/device_info.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/headeronly/version.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/collectives.h"

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
