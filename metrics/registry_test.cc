#include "metrics/registry.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace segqat::metrics {
namespace {

using ::testing::HasSubstr;

TEST(RegistryTest, CountersAndGaugesText) {
  Registry registry;
  Family<Counter>* created =
      *registry.AddCounter("segqat_jobs_created_total", "Jobs created.", {"kind"});
  Family<Gauge>* jobs = *registry.AddGauge("segqat_jobs", "Jobs by state.", {"state"});
  Family<Gauge>* info = *registry.AddGauge("segqat_build_info", "Build version.", {"version"});
  created->WithLabels({{"kind", "qat"}}).Increment();
  created->WithLabels({{"kind", "qat"}}).Increment(2);
  created->WithLabels({{"kind", "eval"}}).Increment(0.5);
  created->WithLabels({{"kind", "eval"}}).Increment(-1);  // Ignored.
  jobs->WithLabels({{"state", "RUNNING"}}).Set(3);
  jobs->WithLabels({{"state", "RUNNING"}}).Decrement();
  jobs->WithLabels({{"state", "QUEUED"}}).Increment();
  info->WithLabels({{"version", "0.1.0"}}).Set(1);

  EXPECT_EQ(registry.Serialize(),
            "# HELP segqat_build_info Build version.\n"
            "# TYPE segqat_build_info gauge\n"
            "segqat_build_info{version=\"0.1.0\"} 1\n"
            "# HELP segqat_jobs Jobs by state.\n"
            "# TYPE segqat_jobs gauge\n"
            "segqat_jobs{state=\"QUEUED\"} 1\n"
            "segqat_jobs{state=\"RUNNING\"} 2\n"
            "# HELP segqat_jobs_created_total Jobs created.\n"
            "# TYPE segqat_jobs_created_total counter\n"
            "segqat_jobs_created_total{kind=\"eval\"} 0.5\n"
            "segqat_jobs_created_total{kind=\"qat\"} 3\n");
}

TEST(RegistryTest, LabelValuesAndHelpAreEscaped) {
  Registry registry;
  Family<Gauge>* loss =
      *registry.AddGauge("segqat_train_loss", "Loss \\ per job\nlatest step.", {"job"});
  loss->WithLabels({{"job", "a\"b\\c\nd"}}).Set(0.75);
  EXPECT_EQ(registry.Serialize(),
            "# HELP segqat_train_loss Loss \\\\ per job\\nlatest step.\n"
            "# TYPE segqat_train_loss gauge\n"
            "segqat_train_loss{job=\"a\\\"b\\\\c\\nd\"} 0.75\n");
}

TEST(RegistryTest, LabelsRenderInDeclaredOrder) {
  Registry registry;
  Family<Counter>* requests =
      *registry.AddCounter("segqat_grpc_requests_total", "RPCs.", {"method", "code"});
  requests->WithLabels({{"code", "OK"}, {"method", "SubmitJob"}}).Increment();
  EXPECT_THAT(registry.Serialize(),
              HasSubstr("segqat_grpc_requests_total{method=\"SubmitJob\",code=\"OK\"} 1\n"));
}

TEST(RegistryTest, HistogramText) {
  Registry registry;
  Family<Histogram>* wait =
      *registry.AddHistogram("segqat_job_queue_wait_seconds", "Queue wait.", {0.5, 1, 2.5});
  Histogram& h = wait->WithLabels();
  h.Observe(0.1);  // Below the first bound.
  h.Observe(1);    // On a bound.
  h.Observe(2);
  h.Observe(10);  // Above the last bound.
  EXPECT_EQ(registry.Serialize(),
            "# HELP segqat_job_queue_wait_seconds Queue wait.\n"
            "# TYPE segqat_job_queue_wait_seconds histogram\n"
            "segqat_job_queue_wait_seconds_bucket{le=\"0.5\"} 1\n"
            "segqat_job_queue_wait_seconds_bucket{le=\"1\"} 2\n"
            "segqat_job_queue_wait_seconds_bucket{le=\"2.5\"} 3\n"
            "segqat_job_queue_wait_seconds_bucket{le=\"+Inf\"} 4\n"
            "segqat_job_queue_wait_seconds_sum 13.1\n"
            "segqat_job_queue_wait_seconds_count 4\n");
}

TEST(RegistryTest, LabeledHistogramKeepsSeriesTogether) {
  Registry registry;
  Family<Histogram>* rpc = *registry.AddHistogram("segqat_grpc_request_duration_seconds",
                                                  "RPC latency.", {0.1}, {"method"});
  rpc->WithLabels({{"method", "B"}}).Observe(0.05);
  rpc->WithLabels({{"method", "A"}}).Observe(1);
  EXPECT_EQ(registry.Serialize(),
            "# HELP segqat_grpc_request_duration_seconds RPC latency.\n"
            "# TYPE segqat_grpc_request_duration_seconds histogram\n"
            "segqat_grpc_request_duration_seconds_bucket{method=\"A\",le=\"0.1\"} 0\n"
            "segqat_grpc_request_duration_seconds_bucket{method=\"A\",le=\"+Inf\"} 1\n"
            "segqat_grpc_request_duration_seconds_sum{method=\"A\"} 1\n"
            "segqat_grpc_request_duration_seconds_count{method=\"A\"} 1\n"
            "segqat_grpc_request_duration_seconds_bucket{method=\"B\",le=\"0.1\"} 1\n"
            "segqat_grpc_request_duration_seconds_bucket{method=\"B\",le=\"+Inf\"} 1\n"
            "segqat_grpc_request_duration_seconds_sum{method=\"B\"} 0.05\n"
            "segqat_grpc_request_duration_seconds_count{method=\"B\"} 1\n");
}

TEST(RegistryTest, RemovedSeriesDisappear) {
  Registry registry;
  Family<Gauge>* loss = *registry.AddGauge("segqat_train_loss", "Loss.", {"job"});
  loss->WithLabels({{"job", "j1"}}).Set(1);
  loss->WithLabels({{"job", "j2"}}).Set(2);
  EXPECT_TRUE(loss->Has({{"job", "j1"}}));
  loss->Remove({{"job", "j1"}});
  loss->Remove({{"job", "never"}});  // No-op.
  EXPECT_FALSE(loss->Has({{"job", "j1"}}));
  EXPECT_EQ(loss->size(), 1u);
  EXPECT_EQ(registry.Serialize(),
            "# HELP segqat_train_loss Loss.\n"
            "# TYPE segqat_train_loss gauge\n"
            "segqat_train_loss{job=\"j2\"} 2\n");
  // The last series gone, the family is not rendered at all.
  loss->Remove({{"job", "j2"}});
  EXPECT_EQ(registry.Serialize(), "");
  // A series created again starts from zero.
  EXPECT_EQ(loss->WithLabels({{"job", "j1"}}).Value(), 0);
}

TEST(RegistryTest, FamiliesInStableNameOrder) {
  Registry registry;
  for (const char* name : {"zeta", "alpha", "mid:rule", "beta"}) {
    (*registry.AddGauge(name, "h"))->WithLabels().Set(1);
  }
  const std::string text = registry.Serialize();
  EXPECT_EQ(text, registry.Serialize());
  EXPECT_LT(text.find("alpha 1"), text.find("beta 1"));
  EXPECT_LT(text.find("beta 1"), text.find("mid:rule 1"));
  EXPECT_LT(text.find("mid:rule 1"), text.find("zeta 1"));
}

TEST(RegistryTest, ConcurrentIncrementsSumExactly) {
  Registry registry;
  Family<Counter>* bytes =
      *registry.AddCounter("segqat_artifact_read_bytes_total", "Bytes.", {"t"});
  Family<Histogram>* steps = *registry.AddHistogram("segqat_train_step_seconds", "Steps.", {0.5});
  Family<Gauge>* gauge = *registry.AddGauge("g", "h");
  constexpr int kThreads = 4, kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every thread also looks the series up, exercising the family lock.
        bytes->WithLabels({{"t", i % 2 ? "odd" : "even"}}).Increment();
        steps->WithLabels().Observe(t % 2 ? 1 : 0.25);
        gauge->WithLabels().Increment(0.5);
        if (i % 1000 == 0) registry.Serialize();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bytes->WithLabels({{"t", "odd"}}).Value() + bytes->WithLabels({{"t", "even"}}).Value(),
            kThreads * kPerThread);
  const Histogram::Snapshot s = steps->WithLabels().Read();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads / 2 * kPerThread));
  EXPECT_DOUBLE_EQ(s.sum, kPerThread * 2 * (1 + 0.25));
  EXPECT_DOUBLE_EQ(gauge->WithLabels().Value(), kThreads * kPerThread * 0.5);
}

TEST(RegistryTest, CollectorsRunAtScrapeTime) {
  Registry registry;
  Family<Gauge>* workers = *registry.AddGauge("segqat_workers", "Workers.", {"state"});
  int scrapes = 0;
  registry.AddCollector([&] {
    ++scrapes;
    workers->WithLabels({{"state", "IDLE"}}).Set(scrapes);
  });
  EXPECT_THAT(registry.Serialize(), HasSubstr("segqat_workers{state=\"IDLE\"} 1\n"));
  EXPECT_THAT(registry.Serialize(), HasSubstr("segqat_workers{state=\"IDLE\"} 2\n"));
}

TEST(RegistryTest, CounterRaiseToNeverGoesDown) {
  Counter c;
  c.RaiseTo(5);
  c.RaiseTo(3);
  c.Increment(1);
  EXPECT_EQ(c.Value(), 6);
}

TEST(RegistryTest, InvalidNamesAreRefusedWithTheName) {
  Registry registry;
  absl::StatusOr<Family<Gauge>*> bad = registry.AddGauge("1jobs", "h");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("1jobs"));
  EXPECT_FALSE(registry.AddGauge("jobs-running", "h").ok());
  EXPECT_FALSE(registry.AddGauge("", "h").ok());
  EXPECT_FALSE(registry.AddGauge("ok_name", "").ok());  // No help.
  EXPECT_TRUE(registry.AddGauge("a:b_c9", "h").ok());

  absl::StatusOr<Family<Gauge>*> label = registry.AddGauge("x", "h", {"__reserved"});
  EXPECT_EQ(label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(label.status().message(), HasSubstr("__reserved"));
  EXPECT_FALSE(registry.AddGauge("x", "h", {"9lives"}).ok());
  EXPECT_FALSE(registry.AddGauge("x", "h", {"a:b"}).ok());
  EXPECT_FALSE(registry.AddGauge("x", "h", {"job", "job"}).ok());
  EXPECT_TRUE(registry.AddGauge("x", "h", {"_job", "Job2"}).ok());

  EXPECT_FALSE(registry.AddCounter("segqat_jobs_created", "h").ok());  // No _total.
  EXPECT_FALSE(registry.AddHistogram("hist", "h", {1}, {"le"}).ok());
  EXPECT_FALSE(registry.AddHistogram("hist", "h", {2, 1}).ok());
}

TEST(RegistryTest, NameClashesAreAlreadyExists) {
  Registry registry;
  ASSERT_TRUE(registry.AddHistogram("segqat_job_duration_seconds", "h", {1}).ok());
  EXPECT_EQ(registry.AddGauge("segqat_job_duration_seconds", "h").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddGauge("segqat_job_duration_seconds_count", "h").status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.AddGauge("y_sum", "h").ok());
  EXPECT_EQ(registry.AddHistogram("y", "h", {1}).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(RegistryDeathTest, WrongLabelNamesAbortNamingThem) {
  Registry registry;
  Family<Gauge>* jobs = *registry.AddGauge("segqat_jobs", "Jobs.", {"state"});
  EXPECT_DEATH(jobs->WithLabels({{"stat", "RUNNING"}}), "segqat_jobs has labels \\{state\\}");
  EXPECT_DEATH(jobs->WithLabels({}), "segqat_jobs");
  EXPECT_DEATH(jobs->WithLabels({{"state", "A"}, {"extra", "B"}}), "extra");
}

}  // namespace
}  // namespace segqat::metrics
