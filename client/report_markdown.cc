#include <algorithm>
#include <cmath>
#include <ctime>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/report_parts.h"

namespace segqat::client::report {
namespace {
using nlohmann::json;

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

}  // namespace

namespace {

// A DIFF job's finding: whether the simulated model and the INT8 engine
// computed the same integer codes, where they part first, and the tensors
// that differ (the first 15, in graph order).
void DiffSection(const JobData& d, std::ostringstream& md) {
  const json& j = *d.diff;
  const json tensors = j.value("tensors", json::array());
  int convs = 0, adds = 0;
  std::vector<const json*> differing;
  int64_t codes = 0, differing_codes = 0;
  for (const json& t : tensors) {
    const std::string op = t.value("op", "");
    convs += op == "conv input";
    adds += op == "add output";
    codes += t.value("codes", int64_t{0});
    differing_codes += t.value("differing", int64_t{0});
    if (t.value("differing", int64_t{0}) > 0 || t.value("unmatched", false)) {
      differing.push_back(&t);
    }
  }
  md << "## Converted vs simulated: " << d.title << " (`" << d.id << "`)\n\n"
     << "The quantized model's simulation (eval mode, its fake-quant forward) against the "
     << j.value("runtime", "engine") << " running its INT8 conversion, on " << j.value("images", 0)
     << " val images, tensor by tensor (" << tensors.size() << " quantized tensors: " << convs
     << " conv inputs, " << adds << " add outputs). ";
  const json& first = j.contains("first_divergence") ? j["first_divergence"] : json();
  if (first.is_null()) {
    md << "Every integer code is equal (" << codes << " codes)";
  } else {
    md << "They part first at `" << first.get<std::string>() << "`; " << differing.size()
       << " tensors differ, " << differing_codes << " of " << codes << " codes";
  }
  md << "; the logits differ by at most "
     << absl::StrFormat("%g", j.value("logits_max_difference", 0.0)) << " and the labels agree on "
     << Fixed(100 * j.value("pixel_agreement", 0.0), 2) << "% of the pixels.\n\n";
  if (differing.empty()) return;
  md << "| tensor | op | codes | differing | share | max \\|Δcode\\| |\n"
     << "|---|---|---:|---:|---:|---:|\n";
  for (size_t i = 0; i < differing.size() && i < 15; ++i) {
    const json& t = *differing[i];
    if (t.value("unmatched", false)) {
      md << "| `" << t.value("name", "") << "` | " << t.value("op", "")
         << " | in one forward only | | | |\n";
      continue;
    }
    md << "| `" << t.value("name", "") << "` | " << t.value("op", "") << " | "
       << t.value("codes", int64_t{0}) << " | " << t.value("differing", int64_t{0}) << " | "
       << Fixed(100 * t.value("share", 0.0), 4) << "% | " << t.value("max_difference", int64_t{0})
       << " |\n";
  }
  if (differing.size() > 15) md << "\n" << differing.size() - 15 << " more tensors differ.\n";
  md << "\n";
}

}  // namespace

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
     << " jobs of segqatd, from their stored events, metrics.json, sensitivity.json and diff.json. "
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
      md << "\n"
         << qat->job->title << " " << (gap > 0 ? "beats" : "does not beat")
         << " the best PTQ of the same bits and layers (" << best_ptq->job->title << ") "
         << (gap > 0 ? "by " : ": it trails by ") << absl::StrFormat("%.2f", 100 * std::abs(gap))
         << " mIoU points.\n";
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
    if (s.contains("suggested_pattern"))
      pattern = s["suggested_pattern"].get<std::vector<std::string>>();
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
  for (const JobData& d : jobs) {
    if (d.diff) DiffSection(d, md);
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

}  // namespace segqat::client::report
