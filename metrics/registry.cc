#include "metrics/registry.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace segqat::metrics {
namespace {

bool IsLetterOrUnderscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

absl::Status CheckMetricName(const std::string& name) {
  bool ok = !name.empty();
  for (size_t i = 0; ok && i < name.size(); ++i) {
    const char c = name[i];
    ok = IsLetterOrUnderscore(c) || c == ':' || (i > 0 && IsDigit(c));
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid metric name \"", name, "\": must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
}

absl::Status CheckLabelName(const std::string& name) {
  bool ok = !name.empty() && !absl::StartsWith(name, "__");
  for (size_t i = 0; ok && i < name.size(); ++i) {
    const char c = name[i];
    ok = IsLetterOrUnderscore(c) || (i > 0 && IsDigit(c));
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid label name \"", name,
                   "\": must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __ (reserved)"));
}

absl::Status Registry::Reserve(const std::string& name, const std::string& help,
                               const std::vector<std::string>& label_names,
                               const std::vector<std::string>& sample_suffixes) {
  if (absl::Status s = CheckMetricName(name); !s.ok()) return s;
  if (help.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("metric ", name, " has no help text"));
  }
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    if (absl::Status s = CheckLabelName(label); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("metric ", name, ": ", s.message()));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", name, ": label \"", label, "\" listed twice"));
    }
  }
  std::vector<std::string> names = {name};
  for (const std::string& suffix : sample_suffixes) names.push_back(name + suffix);
  for (const std::string& n : names) {
    if (taken_names_.count(n) > 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric ", name, ": the name ", n, " is already registered"));
    }
  }
  taken_names_.insert(names.begin(), names.end());
  return absl::OkStatus();
}

absl::StatusOr<Family<Counter>*> Registry::AddCounter(const std::string& name,
                                                      const std::string& help,
                                                      std::vector<std::string> label_names) {
  if (!absl::EndsWith(name, "_total")) {
    return absl::InvalidArgumentError(
        absl::StrCat("counter ", name, " must end in _total (Prometheus naming rule)"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Reserve(name, help, label_names, {}); !s.ok()) return s;
  auto* family = new Family<Counter>(name, help, std::move(label_names),
                                     [] { return std::make_unique<Counter>(); });
  families_[name].reset(family);
  return family;
}

absl::StatusOr<Family<Gauge>*> Registry::AddGauge(const std::string& name, const std::string& help,
                                                  std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Reserve(name, help, label_names, {}); !s.ok()) return s;
  auto* family = new Family<Gauge>(name, help, std::move(label_names),
                                   [] { return std::make_unique<Gauge>(); });
  families_[name].reset(family);
  return family;
}

absl::StatusOr<Family<Histogram>*> Registry::AddHistogram(const std::string& name,
                                                          const std::string& help,
                                                          std::vector<double> bounds,
                                                          std::vector<std::string> label_names) {
  if (absl::Status s = CheckBucketBounds(bounds); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("histogram ", name, ": ", s.message()));
  }
  for (const std::string& label : label_names) {
    if (label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram ", name, ": the label \"le\" is reserved for buckets"));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Reserve(name, help, label_names, {"_bucket", "_sum", "_count"}); !s.ok()) {
    return s;
  }
  auto* family = new Family<Histogram>(
      name, help, std::move(label_names),
      [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); });
  families_[name].reset(family);
  return family;
}

void Registry::AddCollector(std::function<void()> collect) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Serialize() const {
  std::lock_guard<std::mutex> scrape_lock(scrape_mu_);
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();

  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, family] : families_) family->AppendText(&out);
  return out;
}

}  // namespace segqat::metrics
