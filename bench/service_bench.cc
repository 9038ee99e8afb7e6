// Prints segqatd's API latency and event fan-out, measured in one run on a
// real gRPC server on a loopback port (no embedded workers, so nothing
// trains; events are appended as a worker would):
//   1. CreateJob latency p50 / p99 under C concurrent clients;
//   2. the delay from an event's creation (its stored timestamp) to its
//      arrival at each of W concurrent WatchJob streams of one job, and a
//      check that every watcher got every event exactly once, in order.
//   bench_service [--clients C] [--creates N] [--watchers W] [--events E]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "client/client.h"
#include "common/job_name.h"
#include "engine/data/synthetic.h"
#include "server/artifact_store.h"
#include "server/event_bus.h"
#include "server/job_service.h"
#include "server/job_store.h"
#include "server/scheduler.h"

namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 8, creates = 100, watchers = 500, events = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    int v = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--clients")) clients = v;
    if (!std::strcmp(argv[i], "--creates")) creates = v;
    if (!std::strcmp(argv[i], "--watchers")) watchers = v;
    if (!std::strcmp(argv[i], "--events")) events = v;
  }
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("segqat_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  segqat::data::SyntheticOptions so;
  so.out_dir = (dir / "data").string();
  so.train_images = 4;
  so.val_images = 2;
  so.height = 32;
  so.width = 64;
  if (!segqat::data::MakeSyntheticDataset(so).ok()) return 1;

  auto store =
      segqat::server::JobStore::Open((dir / "jobs.db").string(), segqat::server::SystemClock());
  if (!store.ok()) return 1;
  segqat::server::ArtifactStore artifacts((dir / "artifacts").string());
  segqat::server::EventBus bus;
  segqat::server::SchedulerOptions sopt;  // no workers: jobs stay queued
  segqat::server::Scheduler scheduler(store->get(), &artifacts, &bus, sopt);
  (void)scheduler.Start();
  segqat::server::JobServiceImpl service(store->get(), &artifacts, &bus, &scheduler);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  const std::string target = "127.0.0.1:" + std::to_string(port);

  std::string yaml;
  {
    std::ifstream in(std::string(SEGQAT_SOURCE_DIR) +
                     "/configs/deeplabv3p_mobilenetv2_synthetic.yaml");
    yaml.assign(std::istreambuf_iterator<char>(in), {});
  }
  segqat::v1::CreateJobRequest req;
  req.mutable_spec()->set_kind(segqat::v1::TRAIN);
  req.mutable_spec()->set_config_yaml(yaml);
  for (const char* s :
       {"DATASET.DATA_DIR", "", "DATASET.TRAIN_FILE_LIST", "", "DATASET.VAL_FILE_LIST", ""}) {
    req.mutable_spec()->add_overrides(s);
  }
  req.mutable_spec()->set_overrides(1, so.out_dir);
  req.mutable_spec()->set_overrides(3, so.out_dir + "/train_list.txt");
  req.mutable_spec()->set_overrides(5, so.out_dir + "/val_list.txt");

  // 1. CreateJob latency under concurrent clients.
  std::vector<std::vector<double>> lat(clients);
  std::atomic<int> failures{0};
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      segqat::client::Client client(target);
      for (int i = 0; i < creates; ++i) {
        auto s = Clock::now();
        if (!client.CreateJob(req).ok()) ++failures;
        lat[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::printf("service_bench: real segqatd core on %s, SQLite WAL (synchronous=FULL)\n",
              target.c_str());
  std::printf("  CreateJob  %d clients x %d: p50 %.2f ms  p99 %.2f ms  (%.0f jobs/s, %d failed)\n",
              clients, creates, Percentile(all, 0.5), Percentile(all, 0.99), all.size() / wall,
              failures.load());

  // 2. One job, W watchers, E events.
  auto job = segqat::client::Client(target).CreateJob(req);
  if (!job.ok()) return 1;
  const std::string id = segqat::JobIdOf(job->name());
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 8; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  std::vector<std::vector<double>> delays(watchers);
  std::vector<int> bad(watchers, 0);
  std::atomic<int> ready{0};
  threads.clear();
  for (int w = 0; w < watchers; ++w) {
    threads.emplace_back([&, w] {
      auto stub = segqat::v1::JobService::NewStub(channels[w % channels.size()]);
      grpc::ClientContext ctx;
      segqat::v1::WatchJobRequest wr;
      wr.set_name(job->name());
      auto reader = stub->WatchJob(&ctx, wr);
      segqat::v1::JobEvent ev;
      int64_t expect = 1;
      while (reader->Read(&ev)) {
        if (ev.seq() != expect++) bad[w] = 1;
        if (ev.seq() == 1) {
          ++ready;
          continue;
        }
        const int64_t created = ev.time().seconds() * 1000000 + ev.time().nanos() / 1000;
        delays[w].push_back((NowMicros() - created) / 1000.0);
      }
      if (!reader->Finish().ok()) bad[w] = 1;
    });
  }
  while (ready.load() < watchers) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (int e = 0; e < events; ++e) {
    segqat::v1::JobEvent ev;
    ev.mutable_step()->set_step(e + 1);
    (void)(*store)->AppendEvent(id, ev);
    bus.Notify(id);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  (void)(*store)->Transition(id, segqat::v1::CANCELLED, "bench done");
  bus.Notify(id);
  for (auto& t : threads) t.join();
  std::vector<double> d;
  int lost = 0;
  for (int w = 0; w < watchers; ++w) {
    d.insert(d.end(), delays[w].begin(), delays[w].end());
    // events step events + the final state change
    if (static_cast<int>(delays[w].size()) != events + 1 || bad[w]) ++lost;
  }
  std::printf(
      "  WatchJob   %d watchers x %d events: delay p50 %.2f ms  p99 %.2f ms  max %.2f ms;"
      " %zu deliveries, %d watchers missed or reordered events\n",
      watchers, events, Percentile(d, 0.5), Percentile(d, 0.99), Percentile(d, 1.0), d.size(),
      lost);
  server->Shutdown();
  scheduler.Shutdown();
  fs::remove_all(dir);
  return lost == 0 ? 0 : 1;
}
