// One job, refused the same way on every path: segqatd's CreateJob
// (server::ValidateJobSpec) and the worker's and segqat-worker's checks
// (runtime::BuildJobConfig, which `segqat-worker train|eval|...` call through
// runtime::PrepareJob) answer the same code and message, both ways round.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/runtime/job_runner.h"
#include "job/job_spec.h"
#include "server/job_validation.h"

namespace segqat {
namespace {

struct Case {
  const char* what;
  v1::JobKind kind;
  std::vector<std::string> overrides;
  std::string calib = "";
  double budget = -1;  // -1: unset
};

TEST(SameRulesTest, SegqatdAndTheWorkerRefuseAJobAlike) {
  const std::vector<Case> cases = {
      {"eval without a model", v1::EVAL, {}},
      {"export without a model", v1::EXPORT, {}},
      {"scan without a model", v1::SENSITIVITY, {}},
      {"diff without a model", v1::DIFF, {}},
      {"ptq without a float model", v1::PTQ, {}},
      {"unknown calibration", v1::PTQ, {"TRAIN.PRETRAINED_MODEL_DIR", "/m"}, "mse"},
      {"negative budget", v1::SENSITIVITY, {"TEST.TEST_MODEL", "/m"}, "", -0.5},
      {"unknown key", v1::TRAIN, {"BATCH_SIZ", "2"}},
      {"value of the wrong type", v1::TRAIN, {"BATCH_SIZE", "two"}},
      {"crop out of range", v1::TRAIN, {"TRAIN_CROP_SIZE", "(30000, 30000)"}},
      {"batch too large", v1::TRAIN, {"BATCH_SIZE", "512", "TRAIN_CROP_SIZE", "(1024, 512)"}},
      {"a list for a number", v1::QUANT_TRAIN, {"SLIM.weight_bits", "[8]"}},
  };
  for (const Case& c : cases) {
    v1::JobSpec spec;
    spec.set_kind(c.kind);
    for (const std::string& o : c.overrides) spec.add_overrides(o);
    spec.set_calib(c.calib);
    if (c.budget != -1) spec.mutable_drop_budget()->set_value(c.budget);
    const absl::Status server = server::ValidateJobSpec(spec, /*store=*/nullptr);

    // What segqat-worker builds from the same command line.
    runtime::JobRequest request;
    v1::JobSpec kind_only;
    kind_only.set_kind(c.kind);
    request.kind = job::FromSpec(kind_only)->kind;
    request.overrides = c.overrides;
    request.calib = c.calib;
    if (c.budget != -1) request.drop_budget = c.budget;
    const absl::Status worker = runtime::BuildJobConfig(request).status();

    EXPECT_FALSE(server.ok()) << c.what;
    EXPECT_EQ(server.code(), worker.code()) << c.what << ": " << server << " / " << worker;
    EXPECT_EQ(server.message(), worker.message()) << c.what;
  }
}

}  // namespace
}  // namespace segqat
