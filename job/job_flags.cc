#include "job/job_flags.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace segqat::job {
namespace {

absl::Status IntFlag(const ParsedFlags& flags, const char* flag, int* value) {
  if (flags.Has(flag) && !absl::SimpleAtoi(flags.Get(flag), value)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": expects an integer"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<FlagSpec> JobFlags(JobKind kind) {
  std::vector<FlagSpec> f = {{"--cfg", true}};
  if (kind == JobKind::kExport) return f;
  // The diff runs the checkpoint as it was trained, on the CPU's engine.
  if (kind == JobKind::kDiff) return {{"--cfg", true}, {"--images", true}};
  f.push_back({"--not_quant_pattern", true, true});
  f.push_back({"--use_gpu", false});
  f.push_back({"--use_mpio", false});
  switch (kind) {
    case JobKind::kTrain:
    case JobKind::kQuantTrain:
      f.insert(f.end(), {{"--quant", false}, {"--do_eval", false}, {"--log_steps", true}});
      break;
    case JobKind::kEval:
      f.push_back({"--convert", false});
      break;
    case JobKind::kPtq:
      f.insert(f.end(), {{"--calib", true}, {"--calib-batches", true}, {"--do_eval", false}});
      break;
    case JobKind::kSensitivity:
      f.insert(f.end(), {{"--calib", true}, {"--calib-batches", true}, {"--budget", true}});
      break;
    case JobKind::kExport:
    case JobKind::kDiff:
      break;
  }
  return f;
}

absl::Status ApplyJobFlags(const ParsedFlags& flags, JobRequest* request) {
  if (!flags.Has("--cfg")) return absl::InvalidArgumentError("--cfg FILE is required");
  const std::string path = flags.Get("--cfg");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--cfg: cannot read config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  request->config_yaml = text.str();
  request->config_path = path;
  request->overrides = flags.overrides;
  if (request->kind == JobKind::kTrain && flags.Has("--quant"))
    request->kind = JobKind::kQuantTrain;
  if (flags.Has("--not_quant_pattern")) {
    request->not_quant_pattern = flags.values.at("--not_quant_pattern");
  }
  request->do_eval = flags.Has("--do_eval");
  request->convert = flags.Has("--convert");
  request->use_gpu = flags.Has("--use_gpu");
  if (auto st = IntFlag(flags, "--log_steps", &request->log_steps); !st.ok()) return st;
  request->calib = flags.Get("--calib", "");
  if (auto st = IntFlag(flags, "--calib-batches", &request->calib_batches); !st.ok()) return st;
  if (auto st = IntFlag(flags, "--images", &request->diff_images); !st.ok()) return st;
  if (flags.Has("--budget") && !absl::SimpleAtod(flags.Get("--budget"), &request->drop_budget)) {
    return absl::InvalidArgumentError("--budget: expects mIoU points >= 0 (e.g. 0.5)");
  }
  return absl::OkStatus();
}

}  // namespace segqat::job
