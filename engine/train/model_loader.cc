#include "engine/train/model_loader.h"

#include "absl/strings/str_cat.h"
#include "engine/quant/quant_aware.h"

namespace segqat {

absl::StatusOr<LoadedModel> LoadCheckpointModel(const Config& cfg, const std::string& key,
                                                const std::string& dir, bool convert) {
  auto prefixed = [&](const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat(key, ": ", st.message()));
  };
  if (dir.empty()) return absl::InvalidArgumentError(absl::StrCat(key, ": no checkpoint given"));
  auto ck = ReadCheckpoint(dir);
  if (!ck.ok()) return prefixed(ck.status());
  if (auto st = CheckSameArchitecture(dir, ck->config, cfg); !st.ok()) return prefixed(st);
  LoadedModel out;
  out.checkpoint = *std::move(ck);
  try {
    out.model = models::DeepLabV3Plus(models::DeepLabOptions::FromConfig(cfg));
    if (out.checkpoint.meta.quantized) {
      auto report =
          quant::QuantAware(*out.model, quant::QuantConfig::FromConfig(out.checkpoint.config));
      if (!report.ok()) return prefixed(report.status());
    }
    if (auto st = LoadModelState(dir, *out.model); !st.ok()) return prefixed(st);
    out.model->eval();
    if (convert) {
      if (auto st = quant::Convert(*out.model); !st.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat(key, ": --convert needs a quantized checkpoint; ", dir,
                         " was trained without --quant"));
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(key, ": ", e.what_without_backtrace()));
  }
  return out;
}

}  // namespace segqat
