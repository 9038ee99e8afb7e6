// Family<T>: every series of one metric, T being Counter, Gauge or Histogram.
// A family has a name, help text and a fixed list of label names; each
// distinct set of label values is one series, created on first use. Families
// are created and owned by a Registry (registry.h) and live as long as it.
//
// Thread-safe: WithLabels, Remove and Has may be called from any thread; the
// returned metric is itself thread-safe.
#ifndef SEGQAT_METRICS_FAMILY_H_
#define SEGQAT_METRICS_FAMILY_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "metrics/histogram.h"
#include "metrics/scalar_metrics.h"

namespace segqat::metrics {

// Label name -> value, e.g. {{"state", "RUNNING"}}. Values may hold any text.
using Labels = std::map<std::string, std::string>;

// Common part of every family: its identity and how it renders itself.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends # HELP, # TYPE and every series' samples in the text format,
  // series ordered by their label values. Appends nothing while the family
  // has no series.
  virtual void AppendText(std::string* out) const = 0;

 protected:
  FamilyBase(std::string name, std::string help, std::vector<std::string> label_names);

  // The values of `labels` in label_names() order. `labels` must name exactly
  // the family's labels: anything else is a programming error, reported on
  // stderr with the family and label names before std::abort().
  std::vector<std::string> ValuesOf(const Labels& labels) const;

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
};

template <typename T>
class Family final : public FamilyBase {
 public:
  // The series with these label values, created (at zero) when absent.
  // `labels` must have exactly the family's label names (see ValuesOf);
  // a family without labels takes {}. The reference stays valid until
  // Remove() drops that series or the Registry is destroyed: code that
  // removes series must not keep references to them.
  T& WithLabels(const Labels& labels = {});

  // Drops the series with these label values, so it is no longer exported
  // (e.g. a finished job's). No-op when absent. Same REQUIRES as WithLabels.
  void Remove(const Labels& labels);

  // Whether the series exists. Same REQUIRES as WithLabels.
  bool Has(const Labels& labels) const;

  // Number of series.
  size_t size() const;

  void AppendText(std::string* out) const override;

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make_series);

  const std::function<std::unique_ptr<T>()> make_series_;
  mutable std::mutex mu_;
  // Keyed by label values in label_names() order; std::map keeps the
  // rendering order stable.
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_ ABSL_GUARDED_BY(mu_);
};

// Defined in family.cc for these three types only.
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_FAMILY_H_
