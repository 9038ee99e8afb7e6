// Tensor files: a dict name -> tensor in PyTorch's format (torch.save of a
// state dict opens here; what SaveTensorFile writes, torch.load opens), and
// the synced file writes that checkpoints are made of. Parsing works on bytes,
// so untrusted files can be checked (and fuzzed) without touching a disk.
#ifndef SEGQAT_ENGINE_TRAIN_TENSOR_FILE_H_
#define SEGQAT_ENGINE_TRAIN_TENSOR_FILE_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace segqat {

// Writes `bytes` to `path` and fsyncs it. ResourceExhausted when it cannot
// (a full disk).
absl::Status WriteFileSynced(const std::string& path, const std::string& bytes);
// NotFound naming the file when it cannot be read.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Writes tensors (moved to the CPU) as a dict name -> tensor; creates the
// parent folder.
absl::Status SaveTensorFile(const std::string& path,
                            const std::map<std::string, at::Tensor>& tensors);
// The string -> tensor entries of a serialized dict (other entries are
// skipped). InvalidArgument naming `what` when the bytes are not one.
absl::StatusOr<std::map<std::string, at::Tensor>> ParseTensorFile(const std::string& bytes,
                                                                  const std::string& what);
// ReadWholeFile + ParseTensorFile.
absl::StatusOr<std::map<std::string, at::Tensor>> LoadTensorFile(const std::string& path);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_TENSOR_FILE_H_
