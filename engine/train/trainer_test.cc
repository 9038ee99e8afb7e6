// The trainer's step loop on a tiny generated dataset (4 training images,
// BATCH_SIZE 2: 2 steps an epoch): each step reported once, in order, with
// its epoch, the schedule's learning rate and the total; a snapshot after
// every epoch and the final checkpoint; a stop between steps saves
// "interrupted"; a resume from the epoch-1 snapshot goes on at step 3.
#include "engine/train/trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/data/test_util.h"
#include "engine/train/lr_schedule.h"

namespace segqat {
namespace {
namespace fs = std::filesystem;

class RecordingSink : public ProgressSink {
 public:
  void OnStep(const StepEvent& e) override {
    steps.push_back(e);
    if (stop != nullptr && e.step == stop_at) *stop = true;
  }
  void OnSnapshot(const SnapshotEvent& e) override { snapshots.push_back(e.name); }
  std::vector<StepEvent> steps;
  std::vector<std::string> snapshots;
  std::atomic<bool>* stop = nullptr;
  int64_t stop_at = 0;
};

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("segqat_trainer_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    data::testing::MakeSmallDataset(dir_ / "data", 4, 2);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Config MakeConfig(const std::string& save_dir, const std::string& resume = "") {
    std::vector<std::string> overrides = {"DATASET.DATA_DIR",
                                          (dir_ / "data").string(),
                                          "DATASET.TRAIN_FILE_LIST",
                                          (dir_ / "data" / "train_list.txt").string(),
                                          "DATASET.VAL_FILE_LIST",
                                          (dir_ / "data" / "val_list.txt").string(),
                                          "BATCH_SIZE",
                                          "2",
                                          "SOLVER.NUM_EPOCHS",
                                          "3",
                                          "SOLVER.LR",
                                          "0.01",
                                          "TRAIN.SNAPSHOT_EPOCH",
                                          "1",
                                          "TRAIN.MODEL_SAVE_DIR",
                                          save_dir};
    if (!resume.empty()) overrides.insert(overrides.end(), {"TRAIN.RESUME_MODEL_DIR", resume});
    auto cfg = Config::Load(
        std::string(SEGQAT_SOURCE_DIR) + "/configs/deeplabv3p_mobilenetv2_synthetic.yaml",
        overrides);
    EXPECT_TRUE(cfg.ok()) << cfg.status();
    return *cfg;
  }

  fs::path dir_;
};

TEST_F(TrainerTest, StepsEpochsRatesAndSnapshots) {
  const Config cfg = MakeConfig((dir_ / "run").string());
  TrainOptions options;
  options.log_steps = 1;
  RecordingSink sink;
  auto result = Train(cfg, options, &sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps_completed, 6);
  EXPECT_EQ(result->epochs_completed, 3);
  EXPECT_FALSE(result->interrupted);
  ASSERT_EQ(sink.steps.size(), 6u);
  for (int64_t k = 1; k <= 6; ++k) {
    const StepEvent& e = sink.steps[k - 1];
    EXPECT_EQ(e.step, k);
    EXPECT_EQ(e.epoch, (k - 1) / 2 + 1);
    EXPECT_EQ(e.total_steps, 6);
    EXPECT_DOUBLE_EQ(e.lr, LearningRate(cfg, k - 1, 2, 6)) << "step " << k;
    EXPECT_TRUE(std::isfinite(e.loss) && e.loss > 0) << e.loss;
  }
  EXPECT_EQ(sink.snapshots, (std::vector<std::string>{"1", "2", "3", "final"}));
  for (const char* name : {"1", "2", "3", "final"}) {
    EXPECT_TRUE(fs::exists(dir_ / "run" / name / "model.pt")) << name;
  }
}

TEST_F(TrainerTest, AStopBetweenStepsSavesInterruptedAndAResumeGoesOn) {
  std::atomic<bool> stop{false};
  TrainOptions options;
  options.log_steps = 1;
  options.stop = &stop;
  RecordingSink stopped;
  stopped.stop = &stop;
  stopped.stop_at = 3;
  auto first = Train(MakeConfig((dir_ / "run").string()), options, &stopped);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->interrupted);
  EXPECT_EQ(first->steps_completed, 3);
  ASSERT_EQ(stopped.steps.size(), 3u);
  EXPECT_EQ(stopped.snapshots.back(), "interrupted");
  EXPECT_TRUE(fs::exists(dir_ / "run" / "interrupted" / "model.pt"));

  // From the epoch-1 snapshot: steps 3 to 6, at the schedule's rates.
  const Config resumed_cfg = MakeConfig((dir_ / "resumed").string(), (dir_ / "run" / "1").string());
  options.stop = nullptr;
  RecordingSink resumed;
  auto second = Train(resumed_cfg, options, &resumed);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->steps_completed, 6);
  ASSERT_EQ(resumed.steps.size(), 4u);
  EXPECT_EQ(resumed.steps.front().step, 3);
  EXPECT_EQ(resumed.steps.front().epoch, 2);
  EXPECT_DOUBLE_EQ(resumed.steps.front().lr, LearningRate(resumed_cfg, 2, 2, 6));
  EXPECT_EQ(resumed.steps.back().step, 6);
}

}  // namespace
}  // namespace segqat
