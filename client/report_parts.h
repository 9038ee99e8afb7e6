// The parts of `segqat report` (client/report.h) and what passes between
// them: report.cc reads each job's stored numbers into a JobData and a Row,
// report_markdown.cc writes report.md from them, report_plots.cc runs the
// plot script on report_data.json. Internal to the client.
#ifndef SEGQAT_CLIENT_REPORT_PARTS_H_
#define SEGQAT_CLIENT_REPORT_PARTS_H_

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "segqat/v1/jobs.pb.h"

namespace segqat::client::report {

struct EvalPoint {
  int64_t step = 0;  // the global step of the last training step before it
  int64_t epoch = 0;
  double miou = 0, acc = 0, kappa = 0;
  std::vector<double> class_iou;
};

struct JobData {
  v1::Job job;
  std::string id;
  std::string title;
  std::optional<Config> config;
  std::vector<std::pair<int64_t, double>> loss;  // (step, loss)
  std::vector<EvalPoint> evals;
  std::optional<nlohmann::json> metrics;      // metrics.json
  std::optional<nlohmann::json> sensitivity;  // sensitivity.json
  std::optional<nlohmann::json> diff;         // diff.json (engine/runtime/layer_diff.h)
  std::string model_file;                     // the artifact whose size is shown
  int64_t model_bytes = -1;
};

// The row a model job contributes.
struct Row {
  const JobData* job = nullptr;
  double miou = 0, acc = 0, kappa = 0;
  std::vector<double> class_iou;
  std::optional<double> int8_ms, float_ms;
};

// report.md: the models' table, QAT against PTQ, IoU per class, the scans,
// the layer diffs and the jobs; `pngs` are the plots that were drawn (others are not linked).
std::string Markdown(const std::vector<JobData>& jobs, const std::vector<Row>& rows,
                     const std::vector<std::string>& class_names,
                     const std::vector<std::string>& pngs);

// Runs the plot script (client/plot_report.py, compiled in) with `python`
// on `data` (report_data.json); returns the PNG files it wrote to out_dir.
// Its output goes to a log in `scratch`, quoted in the error when it fails.
absl::StatusOr<std::vector<std::string>> DrawPlots(const std::string& python,
                                                   const std::filesystem::path& data,
                                                   const std::filesystem::path& out_dir,
                                                   const std::filesystem::path& scratch);

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path);

}  // namespace segqat::client::report

#endif  // SEGQAT_CLIENT_REPORT_PARTS_H_
