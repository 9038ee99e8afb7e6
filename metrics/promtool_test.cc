// Checks a registry holding every metric type, with awkward label values and
// help text, against Prometheus's own parser and linter (`promtool check
// metrics`, Debian package prometheus).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "metrics/process_metrics.h"
#include "metrics/registry.h"

namespace segqat::metrics {
namespace {

constexpr char kPromtool[] = "/usr/bin/promtool";

// A registry shaped like segqatd's, with hostile label values.
void Populate(Registry* registry) {
  ASSERT_TRUE(RegisterProcessMetrics(registry).ok());
  Family<Gauge>* jobs = *registry->AddGauge("segqat_jobs", "Jobs by state.", {"state"});
  jobs->WithLabels({{"state", "RUNNING"}}).Set(2);
  jobs->WithLabels({{"state", "QUEUED"}}).Set(0);
  Family<Counter>* created = *registry->AddCounter(
      "segqat_jobs_created_total", "Jobs created, by kind \\ \"quoted\"\nsecond line.", {"kind"});
  created->WithLabels({{"kind", "qat"}}).Increment(3);
  Family<Gauge>* loss = *registry->AddGauge("segqat_train_loss", "Latest training loss.", {"job"});
  loss->WithLabels({{"job", "back\\slash \"quote\"\nnewline {}=, ünïcode"}}).Set(0.4321);
  loss->WithLabels({{"job", ""}}).Set(std::nan(""));
  Family<Gauge>* lr = *registry->AddGauge("segqat_train_learning_rate", "Learning rate.", {"job"});
  lr->WithLabels({{"job", "j1"}}).Set(1e-20);
  lr->WithLabels({{"job", "j2"}}).Set(-std::numeric_limits<double>::infinity());
  Family<Histogram>* wait = *registry->AddHistogram(
      "segqat_job_queue_wait_seconds", "Time from submit to start.", ExponentialBuckets(0.5, 4, 8));
  for (double v : {0.1, 0.5, 2.0, 31.0, 1e6}) wait->WithLabels().Observe(v);
  Family<Histogram>* rpc =
      *registry->AddHistogram("segqat_grpc_request_duration_seconds", "RPC latency.",
                              ExponentialBuckets(0.001, 2.5, 10), {"method"});
  rpc->WithLabels({{"method", "/segqat.v1.Jobs/SubmitJob"}}).Observe(0.003);
  rpc->WithLabels({{"method", "/segqat.v1.Jobs/WatchJob"}}).Observe(12);
  Family<Counter>* requests = *registry->AddCounter("segqat_grpc_requests_total",
                                                    "RPCs by method and code.", {"method", "code"});
  requests->WithLabels({{"method", "SubmitJob"}, {"code", "INVALID_ARGUMENT"}}).Increment();
  (*registry->AddGauge("segqat_build_info", "Build version.", {"version"}))
      ->WithLabels({{"version", "0.1.0"}})
      .Set(1);
}

TEST(PromtoolTest, SerializedRegistryPassesCheckMetrics) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << kPromtool << " not installed";
  Registry registry;
  Populate(&registry);
  const std::string text = registry.Serialize();

  const std::filesystem::path dir(::testing::TempDir());
  const std::string input = (dir / ("promtool_in_" + std::to_string(getpid()))).string();
  const std::string output = (dir / ("promtool_out_" + std::to_string(getpid()))).string();
  std::ofstream(input) << text;
  const std::string command =
      std::string(kPromtool) + " check metrics < " + input + " > " + output + " 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream in(output);
  const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(input);
  std::filesystem::remove(output);
  // Non-zero on a parse error or a lint finding; the report names it.
  EXPECT_EQ(rc, 0) << "promtool said:\n" << report << "\non:\n" << text;
  EXPECT_EQ(report, "") << text;
}

}  // namespace
}  // namespace segqat::metrics
