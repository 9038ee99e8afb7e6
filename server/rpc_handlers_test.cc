// segqatd's RPC handlers over a real gRPC channel (in-process): CreateJob's
// refusal, ReadArtifact streaming a stored file in chunks and refusing one
// whose bytes no longer match their digest, and UploadArtifact storing what
// a worker holding the lease sends (and the upload that completes a snapshot
// making it the job's resume point). The file work of both streams runs on
// the services' I/O pools (server/file_io_pool.h).
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "common/sha256.h"
#include "segqat/v1/jobs.grpc.pb.h"
#include "segqat/v1/workers.grpc.pb.h"
#include "server/job_service.h"
#include "server/scheduler_test_util.h"
#include "server/worker_service.h"

namespace segqat::server {
namespace {

using testing_util::Id;
using testing_util::Request;

class RpcHandlersTest : public testing_util::SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    jobs_ =
        std::make_unique<JobServiceImpl>(store_.get(), artifacts_.get(), &bus_, scheduler_.get());
    workers_ = std::make_unique<WorkerServiceImpl>(scheduler_.get(), artifacts_.get(), nullptr,
                                                   int64_t{1} << 30);
    grpc::ServerBuilder builder;
    builder.RegisterService(jobs_.get());
    builder.RegisterService(workers_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel = server_->InProcessChannel(grpc::ChannelArguments());
    job_stub_ = v1::JobService::NewStub(channel);
    worker_stub_ = v1::WorkerService::NewStub(channel);
  }
  void TearDown() override {
    server_->Shutdown();
    server_.reset();
    workers_.reset();
    jobs_.reset();
    SchedulerTest::TearDown();
  }

  static std::string RandomBytes(size_t n) {
    std::mt19937 rng(7);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
  }

  // Stores `data` as the job's artifact `name`, as a committed upload is.
  v1::Artifact Store(const v1::Job& job, const std::string& name, const std::string& data) {
    Sha256 key;
    key.Update(name);
    auto path = artifacts_->UploadPath(Id(job), key.HexDigest());
    EXPECT_TRUE(path.ok()) << path.status();
    std::ofstream(*path, std::ios::binary) << data;
    EXPECT_TRUE(artifacts_->CommitUpload(Id(job), *path, name).ok());
    Sha256 digest;
    digest.Update(data);
    v1::Artifact a;
    a.set_name(name);
    a.set_size_bytes(static_cast<int64_t>(data.size()));
    a.set_sha256(digest.HexDigest());
    EXPECT_TRUE(store_->AddArtifact(Id(job), a).ok());
    return a;
  }

  // ReadArtifact to its end: the bytes, the number of messages, the status.
  grpc::Status Read(const v1::Job& job, const std::string& name, std::string* data, int* messages) {
    grpc::ClientContext ctx;
    v1::ReadArtifactRequest req;
    req.set_name(job.name());
    req.set_artifact(name);
    auto reader = job_stub_->ReadArtifact(&ctx, req);
    v1::ReadArtifactResponse chunk;
    while (reader->Read(&chunk)) {
      data->append(chunk.data());
      ++*messages;
    }
    return reader->Finish();
  }

  std::unique_ptr<JobServiceImpl> jobs_;
  std::unique_ptr<WorkerServiceImpl> workers_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::JobService::Stub> job_stub_;
  std::unique_ptr<v1::WorkerService::Stub> worker_stub_;
};

TEST_F(RpcHandlersTest, CreateJobRefusesABadSpecNamingTheKey) {
  grpc::ClientContext ctx;
  v1::CreateJobRequest req;
  req.mutable_spec()->set_kind(v1::TRAIN);
  req.mutable_spec()->set_config_yaml("BATCH_SIZE: 2\n");
  req.mutable_spec()->add_overrides("BATCH_SIZ");
  req.mutable_spec()->add_overrides("2");
  v1::Job job;
  const grpc::Status st = job_stub_->CreateJob(&ctx, req, &job);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("BATCH_SIZ"), std::string::npos) << st.error_message();
}

TEST_F(RpcHandlersTest, ReadArtifactStreamsTheStoredBytesInChunks) {
  const v1::Job job = Create(Request());
  const std::string bytes = RandomBytes((5 << 20) / 2);  // 2.5 MiB: 3 messages of <= 1 MiB
  Store(job, "final/model.pt", bytes);
  std::string got;
  int messages = 0;
  const grpc::Status st = Read(job, "final/model.pt", &got, &messages);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(messages, 3);
  EXPECT_TRUE(got == bytes);
}

TEST_F(RpcHandlersTest, AStoredFileThatNoLongerMatchesItsDigestIsRefused) {
  const v1::Job job = Create(Request());
  Store(job, "final/model.pt", RandomBytes(4096));
  auto path = artifacts_->Path(Id(job), "final/model.pt");
  ASSERT_TRUE(path.ok());
  {
    std::fstream f(*path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');  // same size, one byte changed
  }
  // More reads than one connection may hold open: each refusal frees its slot.
  for (int i = 0; i < 12; ++i) {
    std::string got;
    int messages = 0;
    const grpc::Status st = Read(job, "final/model.pt", &got, &messages);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
    EXPECT_NE(st.error_message().find("does not match its recorded sha256"), std::string::npos);
    EXPECT_TRUE(got.empty());
  }
}

TEST_F(RpcHandlersTest, UploadArtifactStoresWhatTheLeaseHolderSends) {
  const v1::Job job = Create(Request());
  const v1::Lease lease = Take("w1", job);
  const std::string bytes = RandomBytes(1500000);
  Sha256 digest;
  digest.Update(bytes);
  const std::string sha = digest.HexDigest();
  auto upload = [&](const std::string& name, const std::string& claimed_sha, v1::Artifact* out,
                    const std::string& completes_snapshot = "") {
    grpc::ClientContext ctx;
    auto writer = worker_stub_->UploadArtifact(&ctx, out);
    v1::UploadArtifactRequest header;
    auto* h = header.mutable_header();
    h->set_worker_id("w1");
    *h->mutable_lease() = lease;
    h->set_artifact(name);
    h->set_size_bytes(static_cast<int64_t>(bytes.size()));
    h->set_sha256(claimed_sha);
    h->set_completes_snapshot(completes_snapshot);
    writer->Write(header);
    for (size_t at = 0; at < bytes.size(); at += 1 << 20) {
      v1::UploadArtifactRequest part;
      part.set_data(bytes.substr(at, 1 << 20));
      if (!writer->Write(part)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  };
  v1::Artifact stored;
  grpc::Status st = upload("final/model.pt", sha, &stored);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(stored.name(), "final/model.pt");
  EXPECT_EQ(stored.size_bytes(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(stored.sha256(), sha);
  std::string got;
  int messages = 0;
  ASSERT_TRUE(Read(job, "final/model.pt", &got, &messages).ok());
  EXPECT_TRUE(got == bytes);
  // Bytes that do not hash to what the header claims are not listed.
  v1::Artifact refused;
  st = upload("best_model/model.pt", std::string(64, 'a'), &refused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  auto listed = store_->Get(Id(job));
  ASSERT_TRUE(listed.ok());
  for (const v1::Artifact& a : listed->artifacts()) EXPECT_NE(a.name(), "best_model/model.pt");
  // The snapshot's last file completes it: the job's resume point moves with it.
  EXPECT_EQ(listed->snapshot(), "");
  ASSERT_TRUE(upload("snapshots/3/model.pt", sha, &stored, "snapshots/3").ok());
  EXPECT_EQ(store_->Get(Id(job))->snapshot(), "snapshots/3");
  // Only a snapshot folder's own files may claim to complete it.
  st = upload("final/model.pt", sha, &refused, "final");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("completes_snapshot"), std::string::npos);
  st = upload("snapshots/4/model.pt", sha, &refused, "snapshots/3");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(store_->Get(Id(job))->snapshot(), "snapshots/3");
}

}  // namespace
}  // namespace segqat::server
