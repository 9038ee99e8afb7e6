#include "server/server_metrics.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "server/job_store.h"

namespace segqat::server {
namespace {

TEST(ServerMetricsTest, JobSeriesGoAwayAfterRetentionAndCountsAreText) {
  const std::string db = (std::filesystem::temp_directory_path() /
                          ("segqat_metrics_" + std::to_string(::getpid()) + ".db"))
                             .string();
  std::filesystem::remove(db);
  auto store = JobStore::Open(db, SystemClock());
  ASSERT_TRUE(store.ok()) << store.status();
  metrics::Registry registry;
  auto m = ServerMetrics::Create(
      &registry, store->get(),
      [] {
        return std::map<std::string, int>{{"busy", 1}};
      },
      std::chrono::seconds(0));
  ASSERT_TRUE(m.ok()) << m.status();
  v1::CreateJobRequest req;
  req.mutable_spec()->set_kind(v1::QUANT_TRAIN);
  auto job = (*store)->Create(req);
  ASSERT_TRUE(job.ok());
  const std::string id = job->first.name().substr(5);
  (*m)->JobCreated(v1::QUANT_TRAIN);
  (*m)->Step(id, 0.5, 0.01, 12.5, 0.25);
  (*m)->Evaluated(id, 0.625);
  (*m)->Rpc("CreateJob", "OK", 0.002);
  std::string text = registry.Serialize();
  EXPECT_NE(text.find("segqat_jobs_created_total{kind=\"QUANT_TRAIN\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("segqat_jobs{state=\"QUEUED\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("segqat_workers{state=\"busy\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("segqat_eval_miou{job=\"" + id + "\"} 0.625\n"), std::string::npos) << text;
  EXPECT_NE(text.find("segqat_train_loss{job=\"" + id + "\"} 0.5\n"), std::string::npos);
  EXPECT_NE(text.find("segqat_grpc_requests_total{method=\"CreateJob\",code=\"OK\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("segqat_train_step_seconds_count 1\n"), std::string::npos);
  (*m)->JobEnded(job->first);
  (void)registry.Serialize();  // the collector drops ended jobs past retention
  text = registry.Serialize();
  EXPECT_EQ(text.find("job=\"" + id + "\""), std::string::npos) << text;
  std::filesystem::remove(db);
}

}  // namespace
}  // namespace segqat::server
