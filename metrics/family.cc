#include "metrics/family.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "metrics/text_format.h"

namespace segqat::metrics {
namespace {

// How each metric type names itself in # TYPE and renders one series.
const char* TypeName(const Counter*) { return "counter"; }
const char* TypeName(const Gauge*) { return "gauge"; }
const char* TypeName(const Histogram*) { return "histogram"; }

void AppendSeries(std::string* out, const std::string& name, const std::string& labels,
                  const Counter& counter) {
  AppendSample(out, name, labels, counter.Value());
}

void AppendSeries(std::string* out, const std::string& name, const std::string& labels,
                  const Gauge& gauge) {
  AppendSample(out, name, labels, gauge.Value());
}

void AppendSeries(std::string* out, const std::string& name, const std::string& labels,
                  const Histogram& histogram) {
  const Histogram::Snapshot s = histogram.Read();
  const std::string bucket_name = name + "_bucket";
  for (size_t i = 0; i <= s.bounds.size(); ++i) {
    std::string bucket_labels = labels;
    AppendLabel(&bucket_labels, "le", i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf");
    AppendSample(out, bucket_name, bucket_labels, static_cast<double>(s.cumulative[i]));
  }
  AppendSample(out, name + "_sum", labels, s.sum);
  AppendSample(out, name + "_count", labels, static_cast<double>(s.count));
}

}  // namespace

FamilyBase::FamilyBase(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

std::vector<std::string> FamilyBase::ValuesOf(const Labels& labels) const {
  std::vector<std::string> values;
  values.reserve(label_names_.size());
  for (const std::string& label : label_names_) {
    auto it = labels.find(label);
    if (it == labels.end()) break;
    values.push_back(it->second);
  }
  if (values.size() != label_names_.size() || labels.size() != label_names_.size()) {
    std::vector<std::string> given;
    for (const auto& [label, value] : labels) given.push_back(label);
    std::fprintf(stderr,
                 "segqat::metrics: metric %s has labels {%s} but was given labels {%s}; "
                 "this is a bug in the caller\n",
                 name_.c_str(), absl::StrJoin(label_names_, ",").c_str(),
                 absl::StrJoin(given, ",").c_str());
    std::abort();
  }
  return values;
}

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::function<std::unique_ptr<T>()> make_series)
    : FamilyBase(std::move(name), std::move(help), std::move(label_names)),
      make_series_(std::move(make_series)) {}

template <typename T>
T& Family<T>::WithLabels(const Labels& labels) {
  std::vector<std::string> values = ValuesOf(labels);
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<T>& series = series_[std::move(values)];
  if (series == nullptr) series = make_series_();
  return *series;
}

template <typename T>
void Family<T>::Remove(const Labels& labels) {
  const std::vector<std::string> values = ValuesOf(labels);
  std::lock_guard<std::mutex> lock(mu_);
  series_.erase(values);
}

template <typename T>
bool Family<T>::Has(const Labels& labels) const {
  const std::vector<std::string> values = ValuesOf(labels);
  std::lock_guard<std::mutex> lock(mu_);
  return series_.count(values) > 0;
}

template <typename T>
size_t Family<T>::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return series_.size();
}

template <typename T>
void Family<T>::AppendText(std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (series_.empty()) return;
  AppendFamilyHeader(out, name(), help(), TypeName(static_cast<const T*>(nullptr)));
  for (const auto& [values, series] : series_) {
    AppendSeries(out, name(), RenderLabels(label_names(), values), *series);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

}  // namespace segqat::metrics
