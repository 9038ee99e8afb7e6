// Helpers shared by the data layer's tests (not part of segqat_data).
#ifndef SEGQAT_ENGINE_DATA_TEST_UTIL_H_
#define SEGQAT_ENGINE_DATA_TEST_UTIL_H_

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <system_error>

#include "engine/data/synthetic.h"
#include "gtest/gtest.h"

namespace segqat::data::testing {

// The generated dataset at 256x128 (the synthetic config's size) with
// `train` and `val` images, its lists in out_dir.
inline void MakeSmallDataset(const std::filesystem::path& out_dir, int train, int val) {
  SyntheticOptions d;
  d.out_dir = out_dir.string();
  d.train_images = train;
  d.val_images = val;
  d.height = 128;
  d.width = 256;
  ASSERT_TRUE(MakeSyntheticDataset(d).ok());
}

// A fresh directory under the test temp dir, removed with its contents on
// destruction.
class ScopedTempDir {
 public:
  // Named after the running test (and the process, so parallel ctest runs
  // do not share it).
  ScopedTempDir() : ScopedTempDir(CurrentTestName()) {}
  // Named explicitly (e.g. in SetUpTestSuite, where no test is running).
  explicit ScopedTempDir(const std::string& name) {
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("segqat_data_" + std::to_string(getpid()) + "_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path()/relative as a string, creating the parent folders.
  std::string File(const std::string& relative) const {
    const std::filesystem::path file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    return file.string();
  }

 private:
  static std::string CurrentTestName() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    if (info == nullptr) return "no_test";
    return std::string(info->test_suite_name()) + "_" + info->name();
  }

  std::filesystem::path path_;
};

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes an RGB image (converted to OpenCV's BGR) or a single-channel label.
inline void WritePng(const std::string& path, const cv::Mat& mat) {
  cv::Mat out = mat;
  if (mat.channels() == 3) cv::cvtColor(mat, out, cv::COLOR_RGB2BGR);
  ASSERT_TRUE(cv::imwrite(path, out)) << path;
}

}  // namespace segqat::data::testing

#endif  // SEGQAT_ENGINE_DATA_TEST_UTIL_H_
