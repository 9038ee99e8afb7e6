// The image decoder path: LoadSample on arbitrary file contents, as an image,
// as a train-id label and as a Cityscapes label-id label (first byte picks).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/data/image_io.h"

namespace {

std::string Dir() {
  static const std::string* dir = [] {
    char tmpl[] = "/tmp/segqat_fuzz_image_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    return new std::string(tmpl);
  }();
  return *dir;
}

void Write(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(data, 1, size, f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 3;
  const std::string image = Dir() + "/image.png";
  segqat::data::ListEntry entry;
  entry.image_path = image;
  Write(image, data + 1, size - 1);
  if (mode == 1) {
    entry.label_path = Dir() + "/x_gtFine_labelTrainIds.png";
    Write(entry.label_path, data + 1, size - 1);
  } else if (mode == 2) {
    entry.label_path = Dir() + "/x_gtFine_labelIds.png";
    Write(entry.label_path, data + 1, size - 1);
  }
  auto sample = segqat::data::LoadSample(entry, 19, 255);
  (void)sample;
  return 0;
}
