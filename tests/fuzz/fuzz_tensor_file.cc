// The checkpoint loader's tensor files (model.pt, optimizer.pt, PyTorch
// state dicts given as TRAIN.PRETRAINED_MODEL_DIR) on arbitrary bytes.
#include <cstdint>
#include <string>

#include "engine/train/tensor_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto tensors = segqat::ParseTensorFile(bytes, "fuzz input");
  if (tensors.ok()) {
    for (const auto& [name, t] : *tensors) (void)t.numel();
  }
  return 0;
}
