// The worker agent against a fake segqatd (a C++ WorkerService on an
// in-process channel): a job that cannot start is reported FAILED with the
// key that stops it and its job.log, and the agent goes back to idle; a
// running job told to stop is interrupted between steps, its snapshot
// uploaded with the last file marking it whole (completes_snapshot), and it
// is reported INTERRUPTED.
#include "worker/agent.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "common/sha256.h"
#include "engine/data/test_util.h"
#include "segqat/v1/workers.grpc.pb.h"

namespace segqat::agent {
namespace {
namespace fs = std::filesystem;

class FakeSegqatd final : public v1::WorkerService::Service {
 public:
  explicit FakeSegqatd(v1::JobSpec spec) { run_.mutable_spec()->Swap(&spec); }

  grpc::Status Synchronize(grpc::ServerContext*, const v1::SynchronizeRequest* req,
                           v1::SynchronizeResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    resp->set_report_interval_ms(50);
    const v1::WorkerReport& r = req->report();
    if (r.has_idle()) {
      ++idle_reports_;
      if (!assigned_) {
        assigned_ = true;
        v1::Lease* lease = run_.mutable_lease();
        lease->set_job("jobs/agenttest0001");
        lease->set_fencing(1);
        lease->set_token(std::string(43, 't'));
        *resp->mutable_run() = run_;
      }
    } else if (r.has_running()) {
      for (const v1::JobEvent& e : r.running().events()) {
        steps_ += e.has_step();
        resp->set_acked_seq(e.seq());
      }
      if (stop_after_steps_ > 0 && steps_ >= stop_after_steps_) {
        *resp->mutable_stop()->mutable_lease() = run_.lease();
        resp->mutable_stop()->set_cancelled(true);
      } else {
        *resp->mutable_run() = run_;
      }
    } else if (r.has_finished()) {
      finished_ = r.finished();
      idle_reports_ = 0;
    }
    cv_.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status UploadArtifact(grpc::ServerContext*,
                              grpc::ServerReader<v1::UploadArtifactRequest>* reader,
                              v1::Artifact* resp) override {
    v1::UploadArtifactRequest part;
    v1::UploadArtifactRequest::Header header;
    Sha256 digest;
    int64_t size = 0;
    while (reader->Read(&part)) {
      if (part.has_header()) {
        header = part.header();
      } else {
        digest.Update(part.data());
        size += static_cast<int64_t>(part.data().size());
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    uploads_.push_back(header);
    resp->set_name(header.artifact());
    resp->set_size_bytes(size);
    resp->set_sha256(digest.HexDigest());
    return grpc::Status::OK;
  }

  grpc::Status QueryUpload(grpc::ServerContext*, const v1::QueryUploadRequest*,
                           v1::QueryUploadResponse* resp) override {
    resp->set_received_bytes(0);
    return grpc::Status::OK;
  }

  // Waits until `done` holds (under the lock) or 120 s pass.
  bool WaitFor(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(120), done);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  v1::RunAssignment run_;
  bool assigned_ = false;
  int idle_reports_ = 0;  // since the last Finished report
  int steps_ = 0;
  int stop_after_steps_ = 0;  // > 0: answer Stop once this many steps arrived
  std::optional<v1::WorkerReport::Finished> finished_;
  std::vector<v1::UploadArtifactRequest::Header> uploads_;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("segqat_agent_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    quit_ = true;
    if (agent_thread_.joinable()) agent_thread_.join();
    if (server_) server_->Shutdown();
    fs::remove_all(dir_);
  }

  void Start(FakeSegqatd* fake) {
    grpc::ServerBuilder builder;
    builder.RegisterService(fake);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    AgentOptions options;
    options.worker_id = "agent-test";
    options.host = "test";
    options.work_dir = (dir_ / "work").string();
    options.rpc_deadline = std::chrono::seconds(30);
    auto channel = server_->InProcessChannel(grpc::ChannelArguments());
    agent_thread_ = std::thread([this, channel, options] {
      Agent agent(channel, options);
      status_ = agent.Run(&quit_);
    });
  }

  static v1::JobSpec TrainingSpec(const fs::path& data, int epochs) {
    std::ifstream in(std::string(SEGQAT_SOURCE_DIR) +
                     "/configs/deeplabv3p_mobilenetv2_synthetic.yaml");
    std::stringstream cfg;
    cfg << in.rdbuf();
    v1::JobSpec spec;
    spec.set_kind(v1::TRAIN);
    spec.set_config_yaml(cfg.str());
    spec.set_log_steps(1);
    for (const std::string& o :
         {std::string("DATASET.DATA_DIR"), data.string(), std::string("DATASET.TRAIN_FILE_LIST"),
          (data / "train_list.txt").string(), std::string("DATASET.VAL_FILE_LIST"),
          (data / "val_list.txt").string(), std::string("SOLVER.NUM_EPOCHS"),
          std::to_string(epochs), std::string("TRAIN.SNAPSHOT_EPOCH"), std::string("1")}) {
      spec.add_overrides(o);
    }
    return spec;
  }

  fs::path dir_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> quit_{false};
  std::thread agent_thread_;
  absl::Status status_;
};

TEST_F(AgentTest, AJobThatCannotStartIsReportedFailedAndTheAgentGoesBackToIdle) {
  FakeSegqatd fake(TrainingSpec(dir_ / "no-such-dataset", 1));
  Start(&fake);
  ASSERT_TRUE(fake.WaitFor([&] { return fake.finished_.has_value() && fake.idle_reports_ > 0; }));
  std::lock_guard<std::mutex> lock(fake.mu_);
  EXPECT_EQ(fake.finished_->outcome(), v1::WorkerReport::Finished::FAILED);
  EXPECT_NE(fake.finished_->error().find("DATASET"), std::string::npos) << fake.finished_->error();
  EXPECT_EQ(fake.finished_->lease().job(), "jobs/agenttest0001");
  ASSERT_EQ(fake.uploads_.size(), 1u);
  EXPECT_EQ(fake.uploads_[0].artifact(), "job.log");
  EXPECT_EQ(fake.uploads_[0].completes_snapshot(), "");
  EXPECT_EQ(fake.steps_, 0);
}

TEST_F(AgentTest, AStoppedJobUploadsItsSnapshotMarkedWholeAndReportsInterrupted) {
  data::testing::MakeSmallDataset(dir_ / "data", 8, 2);
  FakeSegqatd fake(TrainingSpec(dir_ / "data", 100));
  fake.stop_after_steps_ = 2;
  Start(&fake);
  ASSERT_TRUE(fake.WaitFor([&] { return fake.finished_.has_value(); }));
  std::lock_guard<std::mutex> lock(fake.mu_);
  EXPECT_EQ(fake.finished_->outcome(), v1::WorkerReport::Finished::INTERRUPTED)
      << fake.finished_->error();
  EXPECT_LT(fake.steps_, 100 * 4);  // stopped long before the schedule's end
  std::vector<std::string> interrupted;
  std::string completes;
  for (const auto& h : fake.uploads_) {
    if (h.artifact().rfind("interrupted/", 0) != 0) continue;
    interrupted.push_back(h.artifact());
    if (!h.completes_snapshot().empty()) completes = h.artifact();
  }
  ASSERT_FALSE(interrupted.empty());
  // Only its last file marks the snapshot whole.
  EXPECT_EQ(completes, interrupted.back());
  bool log = false;
  for (const auto& h : fake.uploads_) log |= h.artifact() == "job.log";
  EXPECT_TRUE(log);  // a cancelled job keeps its log
}

}  // namespace
}  // namespace segqat::agent
