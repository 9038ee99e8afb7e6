// The runner's resume and read rules: a torn newest snapshot falls back to the
// previous one; --data-root confines every path a job reads, after resolving
// `..` and symlinks.
#include "engine/runtime/job_runner.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/runtime/read_roots.h"
#include "engine/train/checkpoint.h"
#include "engine/train/dataset.h"

namespace segqat::runtime {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/segqat_runner_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path path() const { return path_; }

 private:
  fs::path path_;
};

class Lines : public ProgressSink {
 public:
  void OnLog(const std::string& line) override { lines.push_back(line); }
  std::vector<std::string> lines;
};

void Save(const fs::path& dir, int64_t step) {
  torch::nn::Linear model(4, 3);
  CheckpointMeta meta;
  meta.step = step;
  auto cfg = Config::FromYamlText("", {});
  ASSERT_TRUE(cfg.ok());
  ASSERT_TRUE(SaveCheckpoint(dir.string(), *model, {}, meta, *cfg).ok());
}

void Truncate(const fs::path& file) {
  const auto size = fs::file_size(file);
  fs::resize_file(file, size / 2);
}

TEST(NewestSnapshotTest, ATornNewestSnapshotFallsBackToThePreviousOne) {
  TempDir work;
  Save(work.path() / "2", 20);
  Save(work.path() / "4", 40);
  Save(work.path() / "final", 50);  // never a resume point
  Lines sink;
  EXPECT_EQ(NewestSnapshot(work.path().string(), &sink), (work.path() / "4").string());
  EXPECT_TRUE(sink.lines.empty());

  Truncate(work.path() / "4" / "model.pt");
  EXPECT_EQ(NewestSnapshot(work.path().string(), &sink), (work.path() / "2").string());
  ASSERT_EQ(sink.lines.size(), 1u);
  EXPECT_NE(sink.lines[0].find("damaged"), std::string::npos) << sink.lines[0];
  EXPECT_NE(sink.lines[0].find("step 40"), std::string::npos) << sink.lines[0];

  Truncate(work.path() / "2" / "model.pt");
  EXPECT_EQ(NewestSnapshot(work.path().string(), nullptr), "");
}

TEST(ReadRootsTest, PathsAreResolvedBeforeTheyAreChecked) {
  TempDir tmp;
  const fs::path data = tmp.path() / "data";
  fs::create_directories(data / "sub");
  fs::create_directories(tmp.path() / "data2");
  fs::create_directory_symlink("/etc", data / "etc-link");
  std::ofstream(data / "sub" / "list.txt") << "a.png b.png\n";
  const ReadRoots roots({data.string()});
  EXPECT_TRUE(roots.restricted());
  EXPECT_TRUE(roots.Allows((data / "sub" / "list.txt").string()));
  EXPECT_TRUE(roots.Allows((data / "sub" / "not-yet-there.png").string()));
  EXPECT_TRUE(roots.Allows((data / "sub" / ".." / "sub").string()));
  EXPECT_FALSE(roots.Allows("/etc/passwd"));
  EXPECT_FALSE(roots.Allows((data / ".." / "data2").string()));
  EXPECT_FALSE(roots.Allows((tmp.path() / "data2" / "x").string()));  // a sibling, same prefix
  EXPECT_FALSE(roots.Allows((data / "sub" / ".." / ".." / ".." / "etc" / "passwd").string()));
  EXPECT_FALSE(roots.Allows((data / "etc-link" / "passwd").string()));
  EXPECT_TRUE(ReadRoots().Allows("/etc/passwd"));  // no roots: anywhere

  const std::vector<std::string> kKeys = {"DATASET.DATA_DIR", "DATASET.TRAIN_FILE_LIST"};
  auto inside =
      Config::FromYamlText("", {"DATASET.DATA_DIR", data.string(), "DATASET.TRAIN_FILE_LIST",
                                (data / "sub" / "list.txt").string()});
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_TRUE(roots.CheckConfig(*inside, kKeys).ok()) << roots.CheckConfig(*inside, kKeys);
  auto cfg = Config::FromYamlText(
      "", {"DATASET.DATA_DIR", data.string(), "DATASET.TRAIN_FILE_LIST", "/etc/passwd"});
  ASSERT_TRUE(cfg.ok());
  absl::Status st = roots.CheckConfig(*cfg, kKeys);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(st.message().find("DATASET.TRAIN_FILE_LIST: '/etc/passwd' is outside"),
            std::string::npos)
      << st;
  EXPECT_NE(st.message().find("--data-root"), std::string::npos) << st;

  st = roots.CheckEntries({{(data / "a.png").string(), (data / "../../x.png").string()}},
                          "DATASET.VAL_FILE_LIST");
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(st.message().find("DATASET.VAL_FILE_LIST: entry 1"), std::string::npos) << st;
}

// PTQ and the scan read what they calibrate from: errors name the key or flag.
TEST(BuildJobConfigTest, PtqAndSensitivityNeedAFloatModelAndTrainingImages) {
  TempDir tmp;
  const fs::path data = tmp.path() / "data";
  fs::create_directories(data);
  std::ofstream(data / "list.txt") << "a.png a_label.png\n";
  std::ofstream(data / "empty.txt") << "";
  Save(tmp.path() / "float", 10);
  auto message = [&](JobKind kind, std::vector<std::string> overrides,
                     const std::string& calib = "") {
    JobRequest r;
    r.kind = kind;
    r.calib = calib;
    r.overrides = {"DATASET.DATA_DIR",        data.string(),
                   "DATASET.TRAIN_FILE_LIST", (data / "list.txt").string(),
                   "DATASET.VAL_FILE_LIST",   (data / "list.txt").string()};
    r.overrides.insert(r.overrides.end(), overrides.begin(), overrides.end());
    auto cfg = BuildJobConfig(r);
    return cfg.ok() ? std::string("ok") : std::string(cfg.status().message());
  };
  const std::string model = (tmp.path() / "float").string();
  EXPECT_EQ(message(JobKind::kPtq, {"TRAIN.PRETRAINED_MODEL_DIR", model}), "ok");
  EXPECT_EQ(message(JobKind::kPtq, {}),
            "TRAIN.PRETRAINED_MODEL_DIR: the float checkpoint to quantize is required");
  EXPECT_NE(message(JobKind::kPtq, {"TRAIN.PRETRAINED_MODEL_DIR", model + "x"})
                .find("TRAIN.PRETRAINED_MODEL_DIR: " + model + "x does not exist"),
            std::string::npos);
  EXPECT_EQ(message(JobKind::kPtq, {"TRAIN.PRETRAINED_MODEL_DIR", model}, "mse"),
            "calib: 'mse' is not one of abs_max, percentile, kl");
  EXPECT_NE(message(JobKind::kPtq, {"TRAIN.PRETRAINED_MODEL_DIR", model, "DATASET.TRAIN_FILE_LIST",
                                    (data / "empty.txt").string()})
                .find("DATASET.TRAIN_FILE_LIST"),
            std::string::npos);
  EXPECT_EQ(message(JobKind::kSensitivity, {"TEST.TEST_MODEL", model}), "ok");
  EXPECT_EQ(message(JobKind::kSensitivity, {}),
            "TEST.TEST_MODEL: the checkpoint to scan is required");
}

// What was checked is what is used: the lists PrepareJob read are the ones
// the job's SplitEntries returns, even when a list changes on disk between
// the check and the run (a link flipped to another file, say).
TEST(PrepareJobTest, TheJobUsesTheListsItWasCheckedWith) {
  TempDir tmp;
  const fs::path data = tmp.path() / "data";
  fs::create_directories(data);
  std::ofstream(data / "train.txt") << "a.png a_label.png\n";
  std::ofstream(data / "val.txt") << "v.png v_label.png\n";
  std::ofstream(data / "other.txt") << "o.png o_label.png\n";
  JobRequest r;
  r.kind = JobKind::kTrain;
  r.do_eval = true;
  r.overrides = {"DATASET.DATA_DIR",        data.string(),
                 "DATASET.TRAIN_FILE_LIST", (data / "train.txt").string(),
                 "DATASET.VAL_FILE_LIST",   (data / "val.txt").string()};
  auto cfg = PrepareJob(&r);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_NE(r.lists, nullptr);
  std::ofstream(data / "train.txt") << "b.png b_label.png\nc.png c_label.png\n";
  fs::remove(data / "val.txt");

  auto train = SplitEntries(*cfg, Split::kTrain, r.lists.get());
  ASSERT_TRUE(train.ok()) << train.status();
  ASSERT_EQ(train->size(), 1u);
  EXPECT_EQ(fs::path(train->front().image_path).filename(), "a.png");
  auto val = SplitEntries(*cfg, Split::kVal, r.lists.get());
  ASSERT_TRUE(val.ok()) << val.status();
  EXPECT_EQ(fs::path(val->front().image_path).filename(), "v.png");
  // Read again without them, the list is what the disk now holds...
  auto reread = SplitEntries(*cfg, Split::kTrain);
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(reread->size(), 2u);
  // ...and a config naming another list reads that one.
  Config other = *cfg;
  ASSERT_TRUE(other.SetFromString("DATASET.TRAIN_FILE_LIST", (data / "other.txt").string()).ok());
  auto moved = SplitEntries(other, Split::kTrain, r.lists.get());
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(fs::path(moved->front().image_path).filename(), "o.png");
  // A failed check keeps nothing.
  JobRequest bad = r;
  bad.lists = nullptr;
  bad.overrides.back() = (data / "missing.txt").string();
  EXPECT_FALSE(PrepareJob(&bad).ok());
  EXPECT_EQ(bad.lists, nullptr);
}

}  // namespace
}  // namespace segqat::runtime
