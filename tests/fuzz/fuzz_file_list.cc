// The PaddleSeg file-list reader on arbitrary list contents; the first byte
// picks the separator.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/data/file_list.h"

namespace {

const std::string& ListPath() {
  static const std::string* path = [] {
    char tmpl[] = "/tmp/segqat_fuzz_list_XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) std::abort();
    close(fd);
    return new std::string(tmpl);
  }();
  return *path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kSeparators[] = {" ", ",", "\t", ":", "|", "::"};
  const std::string separator = kSeparators[data[0] % 6];
  FILE* f = std::fopen(ListPath().c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(data + 1, 1, size - 1, f);
  std::fclose(f);
  auto entries = segqat::data::ReadFileList(ListPath(), "/data/root", separator);
  if (entries.ok()) {
    for (const auto& e : *entries) {
      if (e.image_path.empty()) std::abort();  // the reader promises non-empty fields
    }
  }
  return 0;
}
