#include "engine/data/loader.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::data {
namespace {

using ::segqat::data::testing::ScopedTempDir;
using ::segqat::data::testing::WritePng;
using ::segqat::data::testing::WriteText;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kImageWidth = 16, kImageHeight = 12;

class BatchLoaderTest : public ::testing::Test {
 protected:
  // Writes n samples; sample i has a textured image and label value i % 19.
  std::vector<ListEntry> WriteSamples(int n) {
    std::vector<ListEntry> entries;
    for (int i = 0; i < n; ++i) {
      cv::Mat rgb(kImageHeight, kImageWidth, CV_8UC3);
      for (int y = 0; y < rgb.rows; ++y) {
        for (int x = 0; x < rgb.cols; ++x) {
          rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(i * 10, x * 15, y * 20);
        }
      }
      ListEntry entry{dir_.File(absl::StrCat("img", i, ".png")),
                      dir_.File(absl::StrCat("lbl", i, ".png"))};
      WritePng(entry.image_path, rgb);
      WritePng(entry.label_path, cv::Mat(kImageHeight, kImageWidth, CV_8UC1, cv::Scalar(i % 19)));
      entries.push_back(entry);
    }
    return entries;
  }

  static LoaderOptions EvalOptions(int batch_size) {
    LoaderOptions options;
    options.mode = LoaderMode::kEval;
    options.batch_size = batch_size;
    options.augment.eval_crop = {20, 14};
    return options;
  }

  static LoaderOptions TrainOptions(int batch_size, int num_workers) {
    LoaderOptions options;
    options.batch_size = batch_size;
    options.num_workers = num_workers;
    options.seed = 7;
    options.augment.train_crop = {8, 8};
    return options;
  }

  // Drains the loader; fails the test on an error.
  static std::vector<Batch> Drain(BatchLoader& loader) {
    std::vector<Batch> batches;
    while (true) {
      absl::StatusOr<std::optional<Batch>> batch = loader.Next();
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok() || !batch->has_value()) break;
      batches.push_back(**std::move(batch));
    }
    return batches;
  }

  ScopedTempDir dir_;
};

TEST_F(BatchLoaderTest, EvalBatchesComeInOrderAndKeepTheLastPartialBatch) {
  const std::vector<ListEntry> entries = WriteSamples(5);
  BatchLoader loader(entries, EvalOptions(2), /*epoch=*/0);
  EXPECT_EQ(loader.num_batches(), 3);
  const std::vector<Batch> batches = Drain(loader);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_THAT(batches[0].image_paths, ElementsAre(entries[0].image_path, entries[1].image_path));
  EXPECT_THAT(batches[1].image_paths, ElementsAre(entries[2].image_path, entries[3].image_path));
  EXPECT_THAT(batches[2].image_paths, ElementsAre(entries[4].image_path));
  const Batch& last = batches[2];
  EXPECT_EQ(last.n, 1);
  EXPECT_EQ(last.height, 14);
  EXPECT_EQ(last.width, 20);
  ASSERT_EQ(last.images.size(), 3u * 14 * 20);
  ASSERT_EQ(last.labels.size(), 14u * 20);
  EXPECT_EQ(last.labels[0], 4);          // (0, 0): sample 4's label
  EXPECT_EQ(last.labels[16], 255);       // (x=16, y=0): padding
  EXPECT_EQ(last.labels[12 * 20], 255);  // (x=0, y=12): padding
  // R channel of sample 4 is 40 everywhere: (40/255 - 0.5) / 0.5.
  EXPECT_NEAR(last.images[0], 40.0 / 255 * 2 - 1, 1e-6);
  // G plane, pixel (x=2, y=0): 30/255.
  EXPECT_NEAR(last.images[14 * 20 + 2], 30.0 / 255 * 2 - 1, 1e-6);
  EXPECT_FALSE(loader.Next()->has_value());  // stays at the end
}

TEST_F(BatchLoaderTest, TrainDropsTheLastPartialBatch) {
  BatchLoader loader(WriteSamples(5), TrainOptions(2, 2), 0);
  EXPECT_EQ(loader.num_batches(), 2);
  const std::vector<Batch> batches = Drain(loader);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].n, 2);
  EXPECT_EQ(batches[1].images.size(), 2u * 3 * 8 * 8);
}

TEST_F(BatchLoaderTest, TrainShufflesPerEpochAndVisitsEverySampleOnce) {
  const std::vector<ListEntry> entries = WriteSamples(12);
  auto order = [&](int epoch) {
    LoaderOptions options = TrainOptions(3, 2);
    options.num_classes = 19;
    BatchLoader loader(entries, options, epoch);
    std::vector<std::string> paths;
    for (const Batch& b : Drain(loader)) {
      paths.insert(paths.end(), b.image_paths.begin(), b.image_paths.end());
    }
    return paths;
  };
  const std::vector<std::string> epoch0 = order(0);
  EXPECT_EQ(epoch0, order(0));
  EXPECT_NE(epoch0, order(1));
  EXPECT_EQ(std::set<std::string>(epoch0.begin(), epoch0.end()).size(), 12u);
}

TEST_F(BatchLoaderTest, ResultsDoNotDependOnTheNumberOfWorkers) {
  const std::vector<ListEntry> entries = WriteSamples(10);
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    LoaderOptions options = TrainOptions(2, workers);
    options.prefetch_batches = workers == 3 ? 1 : 4;
    BatchLoader loader(entries, options, 3);
    runs.push_back(Drain(loader));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t b = 0; b < runs[0].size(); ++b) {
      EXPECT_EQ(runs[r][b].image_paths, runs[0][b].image_paths);
      EXPECT_EQ(runs[r][b].images, runs[0][b].images);
      EXPECT_EQ(runs[r][b].labels, runs[0][b].labels);
    }
  }
}

TEST_F(BatchLoaderTest, CorruptFileErrorComesAfterTheGoodBatches) {
  std::vector<ListEntry> entries = WriteSamples(8);
  WriteText(entries[5].image_path, "not a png");
  BatchLoader loader(entries, EvalOptions(2), 0);
  ASSERT_TRUE(loader.Next().ok());
  ASSERT_TRUE(loader.Next().ok());
  absl::StatusOr<std::optional<Batch>> failed = loader.Next();
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(failed.status().message(), HasSubstr(entries[5].image_path));
  EXPECT_EQ(loader.Next().status(), failed.status());  // sticky
}

TEST_F(BatchLoaderTest, EvalImageLargerThanEvalCropFails) {
  LoaderOptions options = EvalOptions(1);
  options.augment.eval_crop = {8, 8};
  BatchLoader loader(WriteSamples(1), options, 0);
  absl::StatusOr<std::optional<Batch>> batch = loader.Next();
  EXPECT_THAT(batch.status().message(), HasSubstr("EVAL_CROP_SIZE"));
}

TEST_F(BatchLoaderTest, InvalidOptionsAreReportedByNext) {
  LoaderOptions options = EvalOptions(0);
  BatchLoader loader(WriteSamples(1), options, 0);
  EXPECT_EQ(loader.num_batches(), 0);
  EXPECT_EQ(loader.Next().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BatchLoaderTest, DestructionMidEpochDoesNotHang) {
  const std::vector<ListEntry> entries = WriteSamples(40);
  for (int taken : {0, 1, 3}) {
    LoaderOptions options = TrainOptions(2, 3);
    options.prefetch_batches = 2;
    auto loader = std::make_unique<BatchLoader>(entries, options, 0);
    for (int i = 0; i < taken; ++i) ASSERT_TRUE(loader->Next().ok());
    loader.reset();  // joins the workers
  }
}

TEST_F(BatchLoaderTest, EmptyEntriesGiveAnEmptyEpoch) {
  BatchLoader loader({}, EvalOptions(2), 0);
  EXPECT_EQ(loader.num_batches(), 0);
  absl::StatusOr<std::optional<Batch>> batch = loader.Next();
  ASSERT_TRUE(batch.ok());
  EXPECT_FALSE(batch->has_value());
}

}  // namespace
}  // namespace segqat::data
