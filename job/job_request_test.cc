// The job library: a spec's request and its defaults, the rules every entry
// point applies, the config a request assembles, the artifact names.
#include "job/job_request.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "job/artifact_layout.h"
#include "job/job_flags.h"
#include "job/job_spec.h"

namespace segqat::job {
namespace {

v1::JobSpec Spec(v1::JobKind kind, std::vector<std::string> overrides = {}) {
  v1::JobSpec s;
  s.set_kind(kind);
  for (const std::string& o : overrides) s.add_overrides(o);
  return s;
}

std::string Message(const absl::Status& st) { return st.ok() ? "ok" : std::string(st.message()); }

TEST(FromSpecTest, UnsetValuesTakeTheDeclaredDefaults) {
  auto r = FromSpec(Spec(v1::PTQ));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, JobKind::kPtq);
  EXPECT_EQ(r->log_steps, 10);
  EXPECT_EQ(r->calib_batches, 10);
  EXPECT_EQ(r->drop_budget, 0.5);
  EXPECT_EQ(r->log_steps, kDefaultLogSteps);
  v1::JobSpec set = Spec(v1::SENSITIVITY);
  set.set_log_steps(3);
  set.set_calib_batches(2);
  set.mutable_drop_budget()->set_value(0);
  set.set_calib("kl");
  set.add_not_quant_pattern("last_conv");
  r = FromSpec(set);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, JobKind::kSensitivity);
  EXPECT_EQ(r->log_steps, 3);
  EXPECT_EQ(r->calib_batches, 2);
  EXPECT_EQ(r->drop_budget, 0.0);
  EXPECT_EQ(r->calib, "kl");
  EXPECT_EQ(r->not_quant_pattern, std::vector<std::string>{"last_conv"});
  v1::JobSpec diff = Spec(v1::DIFF);
  r = FromSpec(diff);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_images, 16);
  diff.set_diff_images(3);
  EXPECT_EQ(FromSpec(diff)->diff_images, 3);
  EXPECT_EQ(ToSpec(*FromSpec(diff)).diff_images(), 3);
  EXPECT_EQ(ToSpec(*FromSpec(Spec(v1::DIFF))).diff_images(), 0);  // the default stays unset
  for (JobKind k : {JobKind::kTrain, JobKind::kQuantTrain, JobKind::kEval, JobKind::kExport,
                    JobKind::kPtq, JobKind::kSensitivity, JobKind::kDiff}) {
    auto back = FromSpec(Spec(ToProto(k)));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->kind, k);
  }
}

TEST(FromSpecTest, SpecsNoRequestComesFromNameTheField) {
  EXPECT_EQ(Message(FromSpec(Spec(v1::JOB_KIND_UNSPECIFIED)).status()), "spec.kind: required");
  EXPECT_EQ(Message(FromSpec(Spec(static_cast<v1::JobKind>(99))).status()),
            "spec.kind: unknown kind 99");
  v1::JobSpec s = Spec(v1::EVAL);
  s.set_workers(2);
  EXPECT_EQ(Message(FromSpec(s).status()), "spec.workers: only training runs data-parallel");
  s = Spec(v1::TRAIN);
  s.set_gpus(2);
  EXPECT_EQ(Message(FromSpec(s).status()), "spec.gpus: a job runs on 0 or 1 GPU for now, got 2");
  s = Spec(v1::TRAIN);
  s.set_log_steps(-1);
  EXPECT_EQ(Message(FromSpec(s).status()), "spec.log_steps: must not be negative");
  s = Spec(v1::TRAIN);
  s.set_calib_batches(4);
  EXPECT_EQ(Message(FromSpec(s).status()), "calib: only PTQ and SENSITIVITY jobs calibrate");
  s = Spec(v1::PTQ);
  s.mutable_drop_budget()->set_value(1);
  EXPECT_EQ(Message(FromSpec(s).status()), "spec.drop_budget: only SENSITIVITY jobs take a budget");
  s = Spec(v1::EVAL);
  s.set_diff_images(4);
  EXPECT_EQ(Message(FromSpec(s).status()), "diff_images: only DIFF jobs take an image count");
  s = Spec(v1::DIFF);
  s.set_diff_images(-1);
  EXPECT_EQ(Message(FromSpec(s).status()), "spec.diff_images: must not be negative");
}

TEST(CheckJobTest, EachRuleNamesItsSetting) {
  auto check = [](JobRequest r) {
    auto cfg = AssembleConfig(r);
    if (!cfg.ok()) return Message(cfg.status());
    return Message(CheckJob(r, *cfg));
  };
  JobRequest r;
  EXPECT_EQ(check(r), "ok");
  r.kind = JobKind::kEval;
  EXPECT_EQ(check(r), "TEST.TEST_MODEL: the checkpoint to evaluate is required");
  r.overrides = {"TEST.TEST_MODEL", "/m"};
  EXPECT_EQ(check(r), "ok");
  r.kind = JobKind::kExport;
  r.overrides.clear();
  EXPECT_EQ(check(r), "TEST.TEST_MODEL: the checkpoint to export is required");
  r.kind = JobKind::kPtq;
  EXPECT_EQ(check(r), "TRAIN.PRETRAINED_MODEL_DIR: the float checkpoint to quantize is required");
  r.overrides = {"TRAIN.PRETRAINED_MODEL_DIR", "/m"};
  r.calib = "mse";
  EXPECT_EQ(check(r), "calib: 'mse' is not one of abs_max, percentile, kl");
  r.calib = "kl";
  r.calib_batches = 0;
  EXPECT_EQ(check(r), "calib_batches: expects a number >= 1, got 0");
  r.calib_batches = 1;
  r.log_steps = 0;
  EXPECT_EQ(check(r), "log_steps: expects a number >= 1, got 0");
  r.log_steps = 1;
  EXPECT_EQ(check(r), "ok");
  r.kind = JobKind::kTrain;
  EXPECT_EQ(check(r), "calib: only PTQ and SENSITIVITY jobs calibrate");
  r.calib.clear();
  r.kind = JobKind::kSensitivity;
  r.overrides = {"TEST.TEST_MODEL", "/m"};
  r.drop_budget = -0.1;
  EXPECT_EQ(check(r), "drop_budget: expects mIoU points >= 0 (e.g. 0.5)");
  r.drop_budget = 0;
  EXPECT_EQ(check(r), "ok");
  r.kind = JobKind::kDiff;
  r.drop_budget = kDefaultDropBudget;
  EXPECT_EQ(check(r), "ok");
  r.diff_images = 0;
  EXPECT_EQ(check(r), "diff_images: expects a number >= 1, got 0");
  r.diff_images = 4;
  r.use_gpu = true;
  EXPECT_EQ(check(r), "use_gpu: the diff runs the INT8 engine, which runs on the CPU");
  r.use_gpu = false;
  r.overrides.clear();
  EXPECT_EQ(check(r), "TEST.TEST_MODEL: the checkpoint to diff is required");
  r.kind = JobKind::kEval;
  r.overrides = {"TEST.TEST_MODEL", "/m"};
  EXPECT_EQ(check(r), "diff_images: only DIFF jobs take an image count");
}

TEST(AssembleConfigTest, YamlThenOverridesThenNotQuantPattern) {
  JobRequest r;
  r.config_yaml = "BATCH_SIZE: 4\nSLIM:\n  not_quant_pattern: ['skip_quant']\n";
  r.overrides = {"BATCH_SIZE", "6"};
  r.not_quant_pattern = {"last_conv", "aspp"};
  auto cfg = AssembleConfig(r);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->Int("BATCH_SIZE"), 6);
  EXPECT_EQ(cfg->Strs("SLIM.not_quant_pattern"), (std::vector<std::string>{"last_conv", "aspp"}));
  r.overrides = {"BATCH_SIZ", "6"};
  EXPECT_EQ(AssembleConfig(r).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(AssembleConfig(r).status()).find("BATCH_SIZ"), std::string::npos);
}

TEST(ArtifactLayoutTest, SnapshotNames) {
  EXPECT_EQ(SnapshotName(7), "snapshots/7");
  EXPECT_EQ(SnapshotNumber("snapshots/7"), 7);
  EXPECT_EQ(SnapshotNumber("snapshots/12/model.pt"), 12);
  EXPECT_EQ(SnapshotNumber("snapshots/x"), std::nullopt);
  EXPECT_EQ(SnapshotNumber("final/model.pt"), std::nullopt);
  EXPECT_TRUE(SnapshotHolds("snapshots/12", "snapshots/12/model.pt"));
  EXPECT_TRUE(SnapshotHolds("interrupted", "interrupted/checkpoint.yaml"));
  EXPECT_FALSE(SnapshotHolds("snapshots/12", "snapshots/1/model.pt"));
  EXPECT_FALSE(SnapshotHolds("snapshots/12", "snapshots/12"));
  EXPECT_FALSE(SnapshotHolds("snapshots/x", "snapshots/x/model.pt"));
  EXPECT_FALSE(SnapshotHolds("final", "final/model.pt"));
  EXPECT_FALSE(SnapshotHolds("snapshots/012", "snapshots/012/model.pt"));
  EXPECT_EQ(std::string(kFinal), "final");
  EXPECT_EQ(std::string(kBestModel), "best_model");
}

// segqat and segqat-worker parse a job's flags with this one table.
TEST(JobFlagsTest, OneTableForBothCommandLines) {
  char path[] = "/tmp/segqat_job_flags_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "BATCH_SIZE: 4\n";
  auto names = [](JobKind k) {
    std::vector<std::string> n;
    for (const FlagSpec& f : JobFlags(k)) n.push_back(f.name);
    return n;
  };
  EXPECT_EQ(names(JobKind::kExport), std::vector<std::string>{"--cfg"});
  auto parse = [&](JobKind kind, std::vector<std::string> args, JobRequest* r) {
    auto flags = ParseFlags(args, JobFlags(kind));
    if (!flags.ok()) return Message(flags.status());
    r->kind = kind;
    return Message(ApplyJobFlags(*flags, r));
  };
  JobRequest r;
  EXPECT_EQ(parse(JobKind::kTrain,
                  {"--cfg", path, "--quant", "--log_steps", "3", "--not_quant_pattern", "last_conv",
                   "BATCH_SIZE", "2"},
                  &r),
            "ok");
  EXPECT_EQ(r.kind, JobKind::kQuantTrain);
  EXPECT_EQ(r.log_steps, 3);
  EXPECT_EQ(r.config_yaml, "BATCH_SIZE: 4\n");
  EXPECT_EQ(r.config_path, path);
  EXPECT_EQ(r.overrides, (std::vector<std::string>{"BATCH_SIZE", "2"}));
  EXPECT_EQ(r.not_quant_pattern, std::vector<std::string>{"last_conv"});
  JobRequest bad;
  EXPECT_EQ(parse(JobKind::kTrain, {"--cfg", path, "--log_steps", "many"}, &bad),
            "--log_steps: expects an integer");
  EXPECT_EQ(parse(JobKind::kSensitivity, {"--cfg", path, "--budget", "lots"}, &bad),
            "--budget: expects mIoU points >= 0 (e.g. 0.5)");
  EXPECT_EQ(parse(JobKind::kEval, {"--convert"}, &bad), "--cfg FILE is required");
  EXPECT_NE(parse(JobKind::kEval, {"--cfg", std::string(path) + ".missing"}, &bad)
                .find("--cfg: cannot read config file"),
            std::string::npos);
  // A flag of another kind is unknown, on both command lines alike.
  EXPECT_NE(parse(JobKind::kEval, {"--cfg", path, "--calib", "kl"}, &bad).find("--calib"),
            std::string::npos);
  // The values come back through the spec segqat sends.
  JobRequest scan;
  ASSERT_EQ(parse(JobKind::kSensitivity,
                  {"--cfg", path, "--budget", "0", "--calib", "kl", "--calib-batches", "2"}, &scan),
            "ok");
  auto back = FromSpec(ToSpec(scan));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->drop_budget, 0.0);
  EXPECT_EQ(back->calib, "kl");
  EXPECT_EQ(back->calib_batches, 2);
  EXPECT_EQ(back->config_path, path);
  // The diff takes --images and no training or GPU flags.
  EXPECT_EQ(names(JobKind::kDiff), (std::vector<std::string>{"--cfg", "--images"}));
  JobRequest diff;
  ASSERT_EQ(parse(JobKind::kDiff, {"--cfg", path, "--images", "4"}, &diff), "ok");
  EXPECT_EQ(FromSpec(ToSpec(diff))->diff_images, 4);
  EXPECT_NE(parse(JobKind::kDiff, {"--cfg", path, "--use_gpu"}, &bad).find("--use_gpu"),
            std::string::npos);
  unlink(path);
}

}  // namespace
}  // namespace segqat::job
