#include "engine/train/tensor_file.h"

#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/serialize.h>
#include <unistd.h>
#include <zip.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/data/confined_read.h"

namespace segqat {
namespace fs = std::filesystem;

absl::Status WriteFileSynced(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", path));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool synced = done == bytes.size() && ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot write ", path, " (disk full?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  // Through the worker's read roots: a checkpoint's files may be links.
  auto bytes = data::ReadJobFile(path, path);
  if (absl::IsNotFound(bytes.status())) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  return bytes;
}

namespace {

// torch.save's zip layout (data.pkl, data/N, version) for a dict of CPU
// tensors, without the TorchScript type tags that torch::pickle_save adds
// (torch.jit._pickle.restore_type_tag): PyTorch 2.6+ torch.load, whose
// weights_only unpickler refuses that global, loads these files as they are.
std::string TorchSaveBytes(const c10::IValue& value) {
  std::vector<char> pickle;
  torch::jit::Pickler pickler(
      [&](const char* bytes, size_t n) { pickle.insert(pickle.end(), bytes, bytes + n); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t n) {
    out.append(static_cast<const char*>(bytes), n);
    return n;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  const std::vector<at::Tensor>& storages = pickler.tensorData();
  for (size_t i = 0; i < storages.size(); ++i) {
    torch::jit::WriteableTensorData data = torch::jit::getWriteableTensorData(storages[i]);
    writer.writeRecord("data/" + std::to_string(i), data.data(), data.sizeInBytes());
  }
  writer.writeEndOfFile();
  return out;
}

}  // namespace

absl::Status SaveTensorFile(const std::string& path,
                            const std::map<std::string, at::Tensor>& tensors) {
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, t] : tensors) dict.insert(name, t.detach().to(at::kCPU).contiguous());
  try {
    return WriteFileSynced(path, TorchSaveBytes(dict));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("cannot serialize ", path, ": ", e.what_without_backtrace()));
  }
}

namespace {

// PyTorch's tensor files are zip archives of stored (uncompressed) records.
// Their structure is checked here with libzip before LibTorch's own reader
// sees them: LibTorch 1.13's reader reads out of bounds on some malformed
// central directories (found by tests/fuzz/fuzz_tensor_file).
absl::Status CheckZipContainer(const std::string& bytes, const std::string& what) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) {
    zip_error_fini(&error);
    return absl::ResourceExhaustedError(absl::StrCat(what, ": cannot read it into memory"));
  }
  zip_t* archive = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (archive == nullptr) {
    zip_source_free(source);
    std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a readable tensor file (not a sound zip archive: ", why, ")"));
  }
  absl::Status status;
  const zip_int64_t entries = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < entries && status.ok(); ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &st) != 0 ||
        (st.valid & (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)) !=
            (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD) ||
        st.comp_method != ZIP_CM_STORE || st.size != st.comp_size || st.size > bytes.size()) {
      status =
          absl::InvalidArgumentError(absl::StrCat(what, " is not a readable tensor file (record ",
                                                  i, " is not a stored record that fits)"));
    }
  }
  zip_discard(archive);  // frees the source too
  zip_error_fini(&error);
  return status;
}

}  // namespace

absl::StatusOr<std::map<std::string, at::Tensor>> ParseTensorFile(const std::string& bytes,
                                                                  const std::string& what) {
  if (auto st = CheckZipContainer(bytes, what); !st.ok()) return st;
  std::map<std::string, at::Tensor> out;
  try {
    c10::IValue v = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
    if (!v.isGenericDict()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is not a dict of tensors (a state dict)"));
    }
    for (const auto& kv : v.toGenericDict()) {
      if (!kv.key().isString() || !kv.value().isTensor()) continue;
      out[kv.key().toStringRef()] = kv.value().toTensor();
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a readable tensor file: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a readable tensor file: ", e.what()));
  }
  return out;
}

absl::StatusOr<std::map<std::string, at::Tensor>> LoadTensorFile(const std::string& path) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  return ParseTensorFile(*bytes, path);
}

}  // namespace segqat
