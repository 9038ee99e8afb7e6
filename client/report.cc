#include "client/report.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/report_parts.h"
#include "common/job_name.h"
#include "common/subprocess.h"
#include "engine/config/config.h"
#include "engine/data/cityscapes.h"
#include "job/artifact_layout.h"
#include "job/job_spec.h"

namespace segqat::client {
namespace fs = std::filesystem;
using nlohmann::json;

absl::StatusOr<std::string> report::ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path.string()));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {
using report::EvalPoint;
using report::JobData;
using report::ReadFile;
using report::Row;

absl::Status WriteFile(const fs::path& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("report: cannot write ", path.string()));
  return absl::OkStatus();
}

// A JSON artifact of the job, read into memory through a scratch directory.
absl::StatusOr<std::optional<json>> ReadJsonArtifact(Client& client, const JobData& d,
                                                     const v1::ListArtifactsResponse& artifacts,
                                                     const std::string& name,
                                                     const fs::path& scratch) {
  for (const v1::Artifact& a : artifacts.artifacts()) {
    if (a.name() != name) continue;
    const fs::path path = scratch / d.id / name;
    if (auto st = client.Download(d.job.name(), a, path.string()); !st.ok()) return st;
    auto text = ReadFile(path);
    if (!text.ok()) return text.status();
    json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::DataLossError(absl::StrCat(d.job.name(), ": ", name, " is not a JSON object"));
    }
    return std::optional<json>(std::move(j));
  }
  return std::optional<json>();
}

absl::StatusOr<JobData> ReadJob(Client& client, const std::string& name_or_id,
                                const fs::path& scratch) {
  JobData d;
  const std::string name = JobName(JobIdOf(name_or_id));
  auto job = client.GetJob(name);
  if (!job.ok()) {
    if (absl::IsNotFound(job.status())) {
      return absl::NotFoundError(absl::StrCat("report: no job ", name));
    }
    return absl::Status(job.status().code(),
                        absl::StrCat("report: ", name, ": ", job.status().message()));
  }
  d.job = *job;
  d.id = JobIdOf(d.job.name());
  const v1::JobSpec& spec = d.job.spec();
  if (auto request = job::FromSpec(spec); request.ok()) {
    auto cfg = job::AssembleConfig(*request);
    if (cfg.ok()) d.config = *std::move(cfg);
  }
  // The stored events, up to the newest one the job has now.
  const int64_t last = d.job.last_event_seq();
  int64_t step = 0;
  if (last > 0) {
    absl::Status st = client.Watch(d.job.name(), 0, [&](const v1::JobEvent& e) {
      if (e.has_step()) {
        step = e.step().step();
        d.loss.emplace_back(step, e.step().loss());
      } else if (e.has_evaluation()) {
        const v1::Evaluation& ev = e.evaluation();
        EvalPoint p;
        p.step = step;
        p.epoch = ev.epoch();
        p.miou = ev.miou();
        p.acc = ev.acc();
        p.kappa = ev.kappa();
        p.class_iou.assign(ev.class_iou().begin(), ev.class_iou().end());
        d.evals.push_back(std::move(p));
      }
      return e.seq() < last;
    });
    if (!st.ok() && !absl::IsCancelled(st)) {
      return absl::Status(st.code(), absl::StrCat("report: ", name, ": ", st.message()));
    }
  }
  auto artifacts = client.ListArtifacts(d.job.name());
  if (!artifacts.ok()) return artifacts.status();
  auto metrics = ReadJsonArtifact(client, d, *artifacts, job::kMetricsJson, scratch);
  if (!metrics.ok()) return metrics.status();
  d.metrics = *std::move(metrics);
  auto sens = ReadJsonArtifact(client, d, *artifacts, job::kSensitivityJson, scratch);
  if (!sens.ok()) return sens.status();
  d.sensitivity = *std::move(sens);
  auto diff = ReadJsonArtifact(client, d, *artifacts, job::kDiffJson, scratch);
  if (!diff.ok()) return diff.status();
  d.diff = *std::move(diff);
  for (const char* file : {"int8/model.pt", "best_model/model.pt", "final/model.pt"}) {
    for (const v1::Artifact& a : artifacts->artifacts()) {
      if (a.name() == file && d.model_bytes < 0) {
        d.model_file = file;
        d.model_bytes = a.size_bytes();
      }
    }
  }
  return d;
}

// The checkpoint an EVAL job read, as "jobs/ID/..." when it was a job's.
std::string TestModel(const JobData& d) {
  return d.config ? d.config->Str("TEST.TEST_MODEL") : std::string();
}

// Titles from the kinds, or the job's label "model" when it has one; an
// EVAL job of another job in the report is named after it.
void NameJobs(std::vector<JobData>& jobs) {
  std::map<std::string, const JobData*> by_id;
  for (const JobData& d : jobs) by_id[d.id] = &d;
  auto base_title = [&](const JobData& d) -> std::string {
    auto label = d.job.labels().find("model");
    if (label != d.job.labels().end() && !label->second.empty()) return label->second;
    const std::string calib =
        d.job.spec().calib().empty() ? std::string("abs_max") : d.job.spec().calib();
    switch (d.job.kind()) {
      case v1::TRAIN:
        return "float";
      case v1::QUANT_TRAIN:
        return "QAT";
      case v1::PTQ:
        return absl::StrCat("PTQ ", calib);
      case v1::SENSITIVITY:
        return absl::StrCat("sensitivity ", calib);
      default:
        return "";
    }
  };
  auto reads_a_model = [](const JobData& d) {
    return d.job.kind() == v1::EVAL || d.job.kind() == v1::DIFF;
  };
  for (JobData& d : jobs) {
    if (!reads_a_model(d)) d.title = base_title(d);
  }
  for (JobData& d : jobs) {
    if (!reads_a_model(d)) continue;
    auto label = d.job.labels().find("model");
    if (label != d.job.labels().end() && !label->second.empty()) {
      d.title = label->second;
      continue;
    }
    const std::string model = d.job.kind() == v1::DIFF ? "diff"
                              : d.metrics              ? d.metrics->value("model", "")
                                                       : "";
    const std::string source = TestModel(d);
    std::string of = source;
    if (absl::StartsWith(source, "jobs/")) {
      const std::string id = source.substr(5, source.find('/', 5) - 5);
      auto it = by_id.find(id);
      if (it != by_id.end()) of = it->second->title;
    }
    d.title = model == "diff"        ? absl::StrCat("diff of ", of)
              : model == "int8"      ? absl::StrCat("INT8 from ", of)
              : model == "quantized" ? absl::StrCat("eval of ", of, " (simulated)")
                                     : absl::StrCat("eval of ", of);
  }
  std::map<std::string, int> seen;
  for (JobData& d : jobs) {
    if (++seen[d.title] > 1) d.title = absl::StrCat(d.title, " (", d.id.substr(0, 8), ")");
  }
}

std::vector<double> Doubles(const json& j, const char* key) {
  std::vector<double> v;
  if (j.contains(key) && j[key].is_array()) {
    for (const json& x : j[key]) v.push_back(x.is_number() ? x.get<double>() : 0.0);
  }
  return v;
}

absl::StatusOr<Row> RowOf(const JobData& d) {
  Row r;
  r.job = &d;
  if (d.metrics) {
    const json& m = *d.metrics;
    r.miou = m.value("miou", 0.0);
    r.acc = m.value("acc", 0.0);
    r.kappa = m.value("kappa", 0.0);
    r.class_iou = Doubles(m, "class_iou");
    if (m.contains("latency_ms") && m["latency_ms"].is_object()) {
      r.int8_ms = m["latency_ms"].value("int8", 0.0);
      r.float_ms = m["latency_ms"].value("float", 0.0);
    }
    return r;
  }
  if (!d.evals.empty()) {
    // Training keeps best_model by mIoU: its evaluation is the row.
    const EvalPoint& best =
        *std::max_element(d.evals.begin(), d.evals.end(),
                          [](const EvalPoint& a, const EvalPoint& b) { return a.miou < b.miou; });
    r.miou = best.miou;
    r.acc = best.acc;
    r.kappa = best.kappa;
    r.class_iou = best.class_iou;
    return r;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "report: ", d.job.name(), " (", v1::JobKind_Name(d.job.kind()), ", ",
      v1::JobState_Name(d.job.state()),
      ") has no metrics yet: no evaluation event and no metrics.json (train with --do_eval, "
      "run PTQ with --do_eval, or `segqat eval` its model)"));
}

std::string PythonInterpreter(const ReportOptions& o) {
  if (!o.python.empty()) return o.python;
  if (const char* env = std::getenv("SEGQAT_PYTHON"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (fs::exists("/usr/bin/python3", ec)) return "/usr/bin/python3";
  return "python3";
}

std::vector<std::string> ClassNames(const std::vector<JobData>& jobs, size_t n) {
  std::vector<std::string> names;
  if (n == data::cityscapes::kNumClasses) {
    for (const char* c : data::cityscapes::kClassNames) names.emplace_back(c);
    return names;
  }
  (void)jobs;
  for (size_t i = 0; i < n; ++i) names.push_back(absl::StrCat("class ", i));
  return names;
}

absl::Status WriteReportOrThrow(Client& client, const ReportOptions& options) {
  if (options.jobs.empty()) return absl::InvalidArgumentError("report: name at least one JOB");
  if (options.out_dir.empty()) return absl::InvalidArgumentError("report: -o DIR is required");
  auto scratch_dir = ScratchDir::Create("segqat-report");
  if (!scratch_dir.ok()) {
    return absl::InternalError(absl::StrCat("report: ", scratch_dir.status().message()));
  }
  const fs::path scratch((*scratch_dir)->path());

  std::vector<JobData> jobs;
  for (const std::string& name : options.jobs) {
    auto d = ReadJob(client, name, scratch);
    if (!d.ok()) return d.status();
    if (d->job.kind() == v1::EXPORT) {
      return absl::FailedPreconditionError(
          absl::StrCat("report: ", d->job.name(),
                       " is an EXPORT job; a report shows TRAIN, QUANT_TRAIN, PTQ, "
                       "EVAL, SENSITIVITY and DIFF jobs"));
    }
    if (d->job.kind() == v1::DIFF && !d->diff) {
      return absl::FailedPreconditionError(absl::StrCat("report: ", d->job.name(), " (DIFF, ",
                                                        v1::JobState_Name(d->job.state()),
                                                        ") has no diff.json yet"));
    }
    if (d->job.kind() == v1::SENSITIVITY && !d->sensitivity) {
      return absl::FailedPreconditionError(
          absl::StrCat("report: ", d->job.name(), " (SENSITIVITY, ",
                       v1::JobState_Name(d->job.state()), ") has no sensitivity.json yet"));
    }
    jobs.push_back(*std::move(d));
  }
  NameJobs(jobs);
  std::vector<Row> rows;
  for (const JobData& d : jobs) {
    if (d.job.kind() == v1::SENSITIVITY || d.job.kind() == v1::DIFF) continue;
    auto r = RowOf(d);
    if (!r.ok()) return r.status();
    rows.push_back(*std::move(r));
  }
  size_t classes = 0;
  for (const Row& r : rows) classes = std::max(classes, r.class_iou.size());
  const std::vector<std::string> class_names = ClassNames(jobs, classes);

  const fs::path out(options.out_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("-o: cannot create ", out.string(), ": ", ec.message()));
  }
  // The inputs, as downloaded, and the numbers behind the plots.
  json data;
  data["class_names"] = class_names;
  data["models"] = json::array();
  for (const Row& r : rows) {
    data["models"].push_back({{"title", r.job->title},
                              {"job", r.job->job.name()},
                              {"kind", v1::JobKind_Name(r.job->job.kind())},
                              {"miou", r.miou},
                              {"acc", r.acc},
                              {"kappa", r.kappa},
                              {"class_iou", r.class_iou},
                              {"model_bytes", r.job->model_bytes}});
  }
  data["curves"] = json::array();
  data["sensitivity"] = json::array();
  for (const JobData& d : jobs) {
    if (d.metrics) {
      if (auto st = WriteFile(out / "jobs" / d.id / job::kMetricsJson, d.metrics->dump(1) + "\n");
          !st.ok()) {
        return st;
      }
    }
    if (d.sensitivity) {
      if (auto st =
              WriteFile(out / "jobs" / d.id / job::kSensitivityJson, d.sensitivity->dump(1) + "\n");
          !st.ok()) {
        return st;
      }
      json s = *d.sensitivity;
      s["title"] = d.title;
      s["job"] = d.job.name();
      s["png"] = absl::StrCat("sensitivity_", d.id, ".png");
      data["sensitivity"].push_back(std::move(s));
    }
    if (d.diff) {
      if (auto st = WriteFile(out / "jobs" / d.id / job::kDiffJson, d.diff->dump(1) + "\n");
          !st.ok()) {
        return st;
      }
    }
    // Curves are of training runs; other jobs evaluate once.
    if (d.loss.empty()) continue;
    json c = {{"title", d.title}, {"job", d.job.name()}};
    std::vector<int64_t> steps, eval_steps;
    std::vector<double> loss, eval_miou;
    for (const auto& [s, l] : d.loss) {
      steps.push_back(s);
      loss.push_back(l);
    }
    for (const EvalPoint& e : d.evals) {
      eval_steps.push_back(e.step);
      eval_miou.push_back(e.miou);
    }
    c["steps"] = steps;
    c["loss"] = loss;
    c["eval_steps"] = eval_steps;
    c["eval_miou"] = eval_miou;
    data["curves"].push_back(std::move(c));
  }
  const fs::path data_path = out / "report_data.json";
  if (auto st = WriteFile(data_path, data.dump(1) + "\n"); !st.ok()) return st;
  auto pngs = report::DrawPlots(PythonInterpreter(options), data_path, out, scratch);
  // report.md is written without plots when they could not be drawn.
  const std::string md =
      report::Markdown(jobs, rows, class_names, pngs.ok() ? *pngs : std::vector<std::string>());
  if (auto st = WriteFile(out / "report.md", md); !st.ok()) return st;
  return pngs.status();
}

}  // namespace

absl::Status WriteReport(Client& client, const ReportOptions& options) {
  try {
    return WriteReportOrThrow(client, options);
  } catch (const json::exception& e) {
    // A metrics.json or sensitivity.json of the wrong shape.
    return absl::DataLossError(absl::StrCat("report: unexpected JSON in a job's file: ", e.what()));
  }
}

}  // namespace segqat::client
