#include "client/report.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/plot_report_script.h"
#include "worker/config/config.h"
#include "worker/data/cityscapes.h"

extern char** environ;

namespace segqat::client {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

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
  std::optional<json> metrics;      // metrics.json
  std::optional<json> sensitivity;  // sensitivity.json
  std::string model_file;           // the artifact whose size is shown
  int64_t model_bytes = -1;
};

// The row a model job contributes.
struct Row {
  const JobData* job = nullptr;
  double miou = 0, acc = 0, kappa = 0;
  std::vector<double> class_iou;
  std::optional<double> int8_ms, float_ms;
};

std::string JobId(const std::string& name) {
  return absl::StartsWith(name, "jobs/") ? name.substr(5) : name;
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path.string()));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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
  const std::string name = absl::StrCat("jobs/", JobId(name_or_id));
  auto job = client.GetJob(name);
  if (!job.ok()) {
    if (absl::IsNotFound(job.status())) {
      return absl::NotFoundError(absl::StrCat("report: no job ", name));
    }
    return absl::Status(job.status().code(),
                        absl::StrCat("report: ", name, ": ", job.status().message()));
  }
  d.job = *job;
  d.id = JobId(d.job.name());
  const v1::JobSpec& spec = d.job.spec();
  std::vector<std::string> overrides(spec.overrides().begin(), spec.overrides().end());
  if (!spec.not_quant_pattern().empty()) {
    overrides.push_back("SLIM.not_quant_pattern");
    overrides.push_back(absl::StrCat("[", absl::StrJoin(spec.not_quant_pattern(), ","), "]"));
  }
  auto cfg = Config::FromYamlText(spec.config_yaml(), overrides);
  if (cfg.ok()) d.config = *std::move(cfg);
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
  auto metrics = ReadJsonArtifact(client, d, *artifacts, "metrics.json", scratch);
  if (!metrics.ok()) return metrics.status();
  d.metrics = *std::move(metrics);
  auto sens = ReadJsonArtifact(client, d, *artifacts, "sensitivity.json", scratch);
  if (!sens.ok()) return sens.status();
  d.sensitivity = *std::move(sens);
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
  for (JobData& d : jobs) {
    if (d.job.kind() != v1::EVAL) d.title = base_title(d);
  }
  for (JobData& d : jobs) {
    if (d.job.kind() != v1::EVAL) continue;
    auto label = d.job.labels().find("model");
    if (label != d.job.labels().end() && !label->second.empty()) {
      d.title = label->second;
      continue;
    }
    const std::string model = d.metrics ? d.metrics->value("model", "") : "";
    const std::string source = TestModel(d);
    std::string of = source;
    if (absl::StartsWith(source, "jobs/")) {
      const std::string id = source.substr(5, source.find('/', 5) - 5);
      auto it = by_id.find(id);
      if (it != by_id.end()) of = it->second->title;
    }
    d.title = model == "int8"        ? absl::StrCat("INT8 from ", of)
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
    const EvalPoint& best = *std::max_element(
        d.evals.begin(), d.evals.end(),
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

// Whether two jobs quantize the same layers with the same bits.
bool SameQuantization(const JobData& a, const JobData& b) {
  if (!a.config || !b.config) return false;
  for (const char* key : {"SLIM.weight_bits", "SLIM.activation_bits", "SLIM.not_quant_pattern",
                          "SLIM.quant_add", "SLIM.weight_quantize_type"}) {
    if (a.config->Text(key) != b.config->Text(key)) return false;
  }
  return true;
}

std::string Fixed(double v, int digits) { return absl::StrFormat("%.*f", digits, v); }
std::string Points(double v) { return absl::StrFormat("%+.2f", 100 * v); }

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

std::string PythonInterpreter(const ReportOptions& o) {
  if (!o.python.empty()) return o.python;
  if (const char* env = std::getenv("SEGQAT_PYTHON"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (fs::exists("/usr/bin/python3", ec)) return "/usr/bin/python3";
  return "python3";
}

// Runs the embedded plot script; its output goes to `log`.
absl::Status RunPlots(const std::string& python, const fs::path& data, const fs::path& out_dir,
                      const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> args = {python, "-c", kPlotReportScript, data.string(),
                                   out_dir.string()};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "report: cannot run ", python, " for the plots (", std::strerror(rc),
        "); set SEGQAT_PYTHON to a Python 3 with matplotlib (Debian: python3-matplotlib)"));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    auto text = ReadFile(log);
    std::string tail = text.ok() ? *text : "";
    if (tail.size() > 600) tail = tail.substr(tail.size() - 600);
    return absl::FailedPreconditionError(absl::StrCat(
        "report: the plots failed (", python, "; needs matplotlib, Debian: python3-matplotlib): ",
        tail));
  }
  return absl::OkStatus();
}

std::string Markdown(const std::vector<JobData>& jobs, const std::vector<Row>& rows,
                     const std::vector<std::string>& class_names,
                     const std::vector<std::string>& pngs) {
  auto has = [&](const std::string& png) {
    return std::find(pngs.begin(), pngs.end(), png) != pngs.end();
  };
  std::ostringstream md;
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  md << "# segqat report\n\n"
     << "Built " << when << " from " << jobs.size()
     << " jobs of segqatd, from their stored events, metrics.json and sensitivity.json. "
        "mIoU, accuracy and kappa are on the val split of each job's config; a training job's "
        "row is its best evaluation (its best_model).\n\n";
  const Row* float_row = nullptr;
  for (const Row& r : rows) {
    if (r.job->job.kind() == v1::TRAIN && float_row == nullptr) float_row = &r;
  }
  if (!rows.empty()) {
    md << "## Models\n\n"
       << "| model | job | mIoU | vs float (points) | acc | kappa | model file | size (MB) | "
          "INT8 ms | float ms | float / INT8 |\n"
       << "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|\n";
    for (const Row& r : rows) {
      const JobData& d = *r.job;
      md << "| " << d.title << " | `" << d.id << "` | " << Fixed(r.miou, 4) << " | "
         << (float_row != nullptr && float_row != &r ? Points(r.miou - float_row->miou) : "")
         << " | " << Fixed(r.acc, 4) << " | " << Fixed(r.kappa, 4) << " | "
         << (d.model_bytes >= 0 ? absl::StrCat("`", d.model_file, "`") : "") << " | "
         << (d.model_bytes >= 0 ? Fixed(d.model_bytes / 1e6, 3) : "") << " | "
         << (r.int8_ms ? Fixed(*r.int8_ms, 2) : "") << " | "
         << (r.float_ms ? Fixed(*r.float_ms, 2) : "") << " | "
         << (r.int8_ms && r.float_ms && *r.int8_ms > 0 ? Fixed(*r.float_ms / *r.int8_ms, 2) + "x"
                                                        : "")
         << " |\n";
    }
    md << "\nLatency is measured by an EVAL job with `--convert` on its worker: the INT8 engine "
          "and the float engine of the same graph on one val image, median of 7 interleaved "
          "runs.\n";
    // QAT against the best PTQ that quantizes the same way, as the choice a
    // user makes.
    const Row* qat = nullptr;
    const Row* best_ptq = nullptr;
    for (const Row& r : rows) {
      if (r.job->job.kind() == v1::QUANT_TRAIN && (qat == nullptr || r.miou > qat->miou)) qat = &r;
    }
    for (const Row& r : rows) {
      if (qat != nullptr && r.job->job.kind() == v1::PTQ && SameQuantization(*qat->job, *r.job) &&
          (best_ptq == nullptr || r.miou > best_ptq->miou)) {
        best_ptq = &r;
      }
    }
    if (qat != nullptr && best_ptq != nullptr) {
      const double gap = qat->miou - best_ptq->miou;
      md << "\n" << qat->job->title << " " << (gap > 0 ? "beats" : "does not beat")
         << " the best PTQ of the same bits and layers (" << best_ptq->job->title << ") "
         << (gap > 0 ? "by " : ": it trails by ")
         << absl::StrFormat("%.2f", 100 * std::abs(gap)) << " mIoU points.\n";
    }
    md << "\n";
  }
  if (has("curves.png")) {
    md << "## Training\n\n![loss and val mIoU over global steps](curves.png)\n\n";
  }
  std::vector<const Row*> with_classes;
  for (const Row& r : rows) {
    if (!r.class_iou.empty()) with_classes.push_back(&r);
  }
  if (!with_classes.empty()) {
    md << "## IoU per class\n\n| class |";
    for (const Row* r : with_classes) md << " " << r->job->title << " |";
    md << "\n|---|";
    for (size_t i = 0; i < with_classes.size(); ++i) md << "---:|";
    md << "\n";
    for (size_t c = 0; c < class_names.size(); ++c) {
      md << "| " << class_names[c] << " |";
      for (const Row* r : with_classes) {
        md << " " << (c < r->class_iou.size() ? Fixed(r->class_iou[c], 4) : "") << " |";
      }
      md << "\n";
    }
    md << "\n";
    if (has("class_iou.png")) md << "![IoU per class](class_iou.png)\n\n";
  }
  for (const JobData& d : jobs) {
    if (!d.sensitivity) continue;
    const json& s = *d.sensitivity;
    const double f = s.value("float_miou", 0.0), p = s.value("ptq_miou", 0.0),
                 sug = s.value("suggested_miou", 0.0);
    std::vector<std::string> pattern;
    if (s.contains("suggested_pattern")) pattern = s["suggested_pattern"].get<std::vector<std::string>>();
    md << "## Sensitivity: " << d.title << " (`" << d.id << "`)\n\n"
       << "Each layer quantized alone (weights and input, " << s.value("calib", "")
       << " ranges from " << s.value("calib_images", 0) << " training images), the rest float. "
       << "Float mIoU " << Fixed(f, 4) << "; every layer quantized " << Fixed(p, 4) << " ("
       << Points(p - f) << " points). ";
    if (pattern.empty()) {
      md << "The PTQ drop is within the budget of " << Fixed(100 * s.value("budget", 0.0), 2)
         << " points: no layer needs to stay float.\n\n";
    } else {
      md << "Suggested for a budget of " << Fixed(100 * s.value("budget", 0.0), 2)
         << " points: `--not_quant_pattern " << absl::StrJoin(pattern, " ") << "`, which gives "
         << Fixed(sug, 4);
      if (f - p > 0) {
        md << " and recovers " << absl::StrFormat("%.0f", 100 * (sug - p) / (f - p))
           << "% of the PTQ drop";
      }
      md << ".\n\n";
    }
    md << "| layer | kind | mIoU alone | drop (points) |\n|---|---|---:|---:|\n";
    int shown = 0;
    for (const json& l : s.value("layers", json::array())) {
      if (++shown > 15) break;
      md << "| `" << l.value("name", "") << "` | " << l.value("kind", "") << " | "
         << Fixed(l.value("miou", 0.0), 4) << " | " << Fixed(100 * l.value("drop", 0.0), 2)
         << " |\n";
    }
    const std::string png = absl::StrCat("sensitivity_", d.id, ".png");
    if (has(png)) md << "\n![sensitivity of " << d.title << "](" << png << ")\n";
    md << "\n";
  }
  md << "## Jobs\n\n| job | kind | state | model | created | config | flags |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (const JobData& d : jobs) {
    const v1::JobSpec& spec = d.job.spec();
    std::vector<std::string> flags(spec.overrides().begin(), spec.overrides().end());
    if (!spec.not_quant_pattern().empty()) {
      flags.insert(flags.begin(), absl::StrCat("--not_quant_pattern ",
                                               absl::StrJoin(spec.not_quant_pattern(), " ")));
    }
    if (!spec.calib().empty()) flags.insert(flags.begin(), "--calib " + spec.calib());
    if (spec.convert()) flags.insert(flags.begin(), "--convert");
    char created[32] = "";
    const std::time_t t = d.job.create_time().seconds();
    std::strftime(created, sizeof created, "%Y-%m-%d %H:%M", std::gmtime(&t));
    md << "| `" << d.id << "` | " << v1::JobKind_Name(d.job.kind()) << " | "
       << v1::JobState_Name(d.job.state()) << " | " << d.title << " | " << created << " | "
       << spec.config_path() << " | " << absl::StrJoin(flags, " ") << " |\n";
  }
  return md.str();
}

absl::Status WriteReportOrThrow(Client& client, const ReportOptions& options) {
  if (options.jobs.empty()) return absl::InvalidArgumentError("report: name at least one JOB");
  if (options.out_dir.empty()) return absl::InvalidArgumentError("report: -o DIR is required");
  std::string scratch_template =
      (fs::temp_directory_path() / "segqat-report-XXXXXX").string();
  if (mkdtemp(scratch_template.data()) == nullptr) {
    return absl::InternalError("report: cannot create a scratch directory");
  }
  const fs::path scratch(scratch_template);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{scratch};

  std::vector<JobData> jobs;
  for (const std::string& name : options.jobs) {
    auto d = ReadJob(client, name, scratch);
    if (!d.ok()) return d.status();
    if (d->job.kind() == v1::EXPORT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "report: ", d->job.name(), " is an EXPORT job; a report shows TRAIN, QUANT_TRAIN, PTQ, "
          "EVAL and SENSITIVITY jobs"));
    }
    if (d->job.kind() == v1::SENSITIVITY && !d->sensitivity) {
      return absl::FailedPreconditionError(absl::StrCat(
          "report: ", d->job.name(), " (SENSITIVITY, ", v1::JobState_Name(d->job.state()),
          ") has no sensitivity.json yet"));
    }
    jobs.push_back(*std::move(d));
  }
  NameJobs(jobs);
  std::vector<Row> rows;
  for (const JobData& d : jobs) {
    if (d.job.kind() == v1::SENSITIVITY) continue;
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
      if (auto st = WriteFile(out / "jobs" / d.id / "metrics.json", d.metrics->dump(1) + "\n");
          !st.ok()) {
        return st;
      }
    }
    if (d.sensitivity) {
      if (auto st = WriteFile(out / "jobs" / d.id / "sensitivity.json",
                              d.sensitivity->dump(1) + "\n");
          !st.ok()) {
        return st;
      }
      json s = *d.sensitivity;
      s["title"] = d.title;
      s["job"] = d.job.name();
      s["png"] = absl::StrCat("sensitivity_", d.id, ".png");
      data["sensitivity"].push_back(std::move(s));
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
  const fs::path log = scratch / "plots.log";
  absl::Status plotted = RunPlots(PythonInterpreter(options), data_path, out, log);
  std::vector<std::string> pngs;
  if (plotted.ok()) {
    auto text = ReadFile(log);
    std::istringstream lines(text.ok() ? *text : "");
    for (std::string line; std::getline(lines, line);) {
      if (absl::EndsWith(line, ".png")) pngs.push_back(line);
    }
  }
  if (auto st = WriteFile(out / "report.md", Markdown(jobs, rows, class_names, pngs)); !st.ok()) {
    return st;
  }
  return plotted;
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
