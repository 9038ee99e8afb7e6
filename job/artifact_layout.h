// The artifacts of a job, as the worker writes and uploads them, segqatd
// lists, keeps and prunes them, and clients and chained jobs name them
// ("jobs/ID/final"). These names are part of the API: declared here only.
//   final/          the last checkpoint (training, PTQ)
//   best_model/     the checkpoint with the best val mIoU (training --do_eval)
//   snapshots/N/    the epoch-N snapshot a job resumes from (segqatd keeps the newest)
//   interrupted/    the snapshot of a job stopped between epochs
//   int8/           the converted model (eval --convert)
//   export/         ONNX, TorchScript and deploy.yaml (export)
//   metrics.json    eval's metrics; sensitivity.json: the scan's report;
//                   diff.json: the layer-by-layer diff
//   job.log         the job's log
#ifndef SEGQAT_JOB_ARTIFACT_LAYOUT_H_
#define SEGQAT_JOB_ARTIFACT_LAYOUT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace segqat::job {

inline constexpr char kFinal[] = "final";
inline constexpr char kBestModel[] = "best_model";
inline constexpr char kSnapshots[] = "snapshots";
inline constexpr char kInterrupted[] = "interrupted";
inline constexpr char kInt8[] = "int8";
inline constexpr char kExport[] = "export";
inline constexpr char kMetricsJson[] = "metrics.json";
inline constexpr char kSensitivityJson[] = "sensitivity.json";
inline constexpr char kDiffJson[] = "diff.json";
inline constexpr char kJobLog[] = "job.log";

// "snapshots/N", the epoch-N snapshot.
inline std::string SnapshotName(int64_t n) { return absl::StrCat(kSnapshots, "/", n); }

// Whether `prefix` is a snapshot folder ("snapshots/N" or "interrupted")
// and `artifact` a file inside it: what an upload may mark as completing a
// snapshot (UploadArtifactRequest.Header.completes_snapshot).
inline bool SnapshotHolds(absl::string_view prefix, absl::string_view artifact);

// N for an artifact "snapshots/N" or below it ("snapshots/N/model.pt").
inline std::optional<int64_t> SnapshotNumber(absl::string_view artifact) {
  const std::vector<absl::string_view> parts = absl::StrSplit(artifact, '/');
  int64_t n = 0;
  if (parts.size() >= 2 && parts[0] == kSnapshots && absl::SimpleAtoi(parts[1], &n)) return n;
  return std::nullopt;
}

inline bool SnapshotHolds(absl::string_view prefix, absl::string_view artifact) {
  const auto n = SnapshotNumber(prefix);
  const bool folder = prefix == kInterrupted || (n && prefix == SnapshotName(*n));
  return folder && artifact.size() > prefix.size() + 1 &&
         artifact.substr(0, prefix.size()) == prefix && artifact[prefix.size()] == '/';
}

}  // namespace segqat::job

#endif  // SEGQAT_JOB_ARTIFACT_LAYOUT_H_
