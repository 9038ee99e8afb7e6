// Registry: the one owner of a process's metric families, and what a scrape
// renders. Families are built once, at start-up, by their owner:
//
//   Registry registry;
//   Family<Gauge>* jobs = *registry.AddGauge("segqat_jobs", "Jobs by state.", {"state"});
//   jobs->WithLabels({{"state", "RUNNING"}}).Increment();
//   std::string text = registry.Serialize();  // Prometheus text format 0.0.4
//
// Name rules (Add* returns InvalidArgument naming the offender otherwise):
// metric names match [a-zA-Z_:][a-zA-Z0-9_:]*; label names match
// [a-zA-Z_][a-zA-Z0-9_]*, do not start with "__" and are not repeated;
// histograms may not use the label "le"; counter names end in "_total" (the
// Prometheus naming rule); help text is not empty. A name already used by
// another family, including a histogram's _bucket/_sum/_count, is
// AlreadyExists.
//
// Thread-safe: every method may be called from any thread. Metric updates
// are lock-free (atomics); each family has its own mutex for its series map.
#ifndef SEGQAT_METRICS_REGISTRY_H_
#define SEGQAT_METRICS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "metrics/family.h"
#include "metrics/histogram.h"
#include "metrics/scalar_metrics.h"

namespace segqat::metrics {

// OK when `name` is a valid metric name; InvalidArgument naming it otherwise.
absl::Status CheckMetricName(const std::string& name);
// OK when `name` is a valid label name; InvalidArgument naming it otherwise.
absl::Status CheckLabelName(const std::string& name);

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Create a family. The pointer is owned by the registry and valid for its
  // lifetime. Errors: see the name rules above.
  absl::StatusOr<Family<Counter>*> AddCounter(const std::string& name, const std::string& help,
                                              std::vector<std::string> label_names = {});
  absl::StatusOr<Family<Gauge>*> AddGauge(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names = {});
  // `bounds`: the finite, strictly increasing bucket upper bounds (e.g.
  // ExponentialBuckets(0.001, 2, 16)); +Inf is implicit. InvalidArgument
  // otherwise (see CheckBucketBounds).
  absl::StatusOr<Family<Histogram>*> AddHistogram(const std::string& name, const std::string& help,
                                                  std::vector<double> bounds,
                                                  std::vector<std::string> label_names = {});

  // Registers `collect`, run by every Serialize() before rendering, to bring
  // metrics computed on demand up to date (process metrics, gauges read from
  // another component). Collectors run in registration order, one scrape at a
  // time, outside the registry's lock: they may update metrics and add
  // families, but must not call Serialize() (deadlock) and should be quick.
  void AddCollector(std::function<void()> collect);

  // Runs the collectors, then renders every family with at least one series
  // in the Prometheus text format 0.0.4, families ordered by name.
  std::string Serialize() const;

 private:
  // Validates and reserves `name` and the sample names it will emit.
  absl::Status Reserve(const std::string& name, const std::string& help,
                       const std::vector<std::string>& label_names,
                       const std::vector<std::string>& sample_suffixes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Serializes scrapes so collectors never run concurrently.
  mutable std::mutex scrape_mu_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  // Family names and every sample name they emit, to refuse clashes.
  std::set<std::string> taken_names_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> collectors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_REGISTRY_H_
