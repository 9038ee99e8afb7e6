// What this build of LibTorch brings (versions compiled in) and which CUDA
// devices this process can see. Thread-safe; never throws. On a machine
// without a GPU, cuda_devices is empty and every version is still reported.
#ifndef SEGQAT_ENGINE_RUNTIME_DEVICE_INFO_H_
#define SEGQAT_ENGINE_RUNTIME_DEVICE_INFO_H_

#include <cstdint>
#include <string>
#include <vector>

namespace segqat::runtime {

struct CudaDeviceInfo {
  int index = 0;                   // CUDA ordinal
  std::string name;                // e.g. "NVIDIA H200"
  int64_t memory_bytes = 0;        // total global memory
  std::string compute_capability;  // e.g. "9.0"
};

struct RuntimeInfo {
  std::string libtorch;  // "2.11.0"
  std::string cuda;      // CUDA runtime LibTorch was built with, "13.0"; "" when none
  std::string cudnn;     // "9.19.0"; "" when none
  std::string nccl;      // "2.28.9"; "" when none
  std::vector<CudaDeviceInfo> cuda_devices;  // visible now
};

RuntimeInfo GetRuntimeInfo();

// "LibTorch 2.11.0, CUDA 13.0, cuDNN 9.19.0, NCCL 2.28.9" (absent parts left out).
std::string DescribeBuild(const RuntimeInfo& info);

// The memory a job may use on this host: the smaller of the machine's RAM
// (/proc/meminfo) and this process's cgroup limit (v2 memory.max, v1
// memory.limit_in_bytes); 0 when neither can be read.
int64_t HostMemoryBytes();

// About what training `batch` crops of `width` x `height` a step takes:
// LibTorch, the model and its optimizer (0.8 GiB) plus activations per input
// pixel, measured with segqat-worker train's peak RSS on this project's
// machine (DeepLabv3+/MobileNetV2, 512x256 crops, batch 2 against 8): 2.9 KB
// a pixel in float training, 3.8 KB with fake quantization. An estimate, not
// a bound: it is used to refuse jobs that cannot possibly fit.
int64_t EstimateTrainingBytes(int64_t batch, int64_t width, int64_t height, bool quant);

// "13.0" from CUDART_VERSION-style 13000; "9.19.0" from cuDNN's 91900.
std::string CudaVersionString(long version);
std::string CudnnVersionString(long version);

}  // namespace segqat::runtime

#endif  // SEGQAT_ENGINE_RUNTIME_DEVICE_INFO_H_
