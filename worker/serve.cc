#include "worker/serve.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/channel.h"
#include "engine/data/confined_read.h"
#include "job/flags.h"
#include "worker/agent.h"
#include "worker/work_dir.h"

namespace segqat {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

absl::StatusOr<std::vector<int>> ParseGpus(const std::string& value) {
  const int available = static_cast<int>(torch::cuda::device_count());
  std::vector<int> gpus;
  if (value == "none") return gpus;
  if (value == "all") {
    for (int i = 0; i < available; ++i) gpus.push_back(i);
    return gpus;
  }
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    int g = -1;
    if (!absl::SimpleAtoi(part, &g) || g < 0) {
      return absl::InvalidArgumentError("--gpus: expects all, none or a list such as 0,1");
    }
    if (g >= available) {
      return absl::InvalidArgumentError(
          absl::StrCat("--gpus: no CUDA device ", g, " (this machine has ", available, ")"));
    }
    gpus.push_back(g);
  }
  return gpus;
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  auto flags = ParseFlags(args, {{"--server", true},
                                 {"--gpus", true},
                                 {"--name", true},
                                 {"--work-dir", true},
                                 {"--advertise-address", true},
                                 {"--threads", true},
                                 {"--collective-timeout", true},
                                 {"--token-file", true},
                                 {"--data-root", true, true},
                                 {"--tls-ca", true},
                                 {"--tls-cert", true},
                                 {"--tls-key", true},
                                 {"--help", false}});
  constexpr char kUsage[] =
      "usage: segqat-worker serve --server HOST:PORT [--gpus all|none|0,1] [--name NAME]\n"
      "                           [--work-dir DIR] [--advertise-address HOST] [--threads N]\n"
      "                           [--token-file FILE] [--data-root DIR ...]\n"
      "                           [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]\n"
      "                           [--collective-timeout SECONDS]\n"
      "  --collective-timeout SECONDS  how long a data-parallel rank waits for its peers\n"
      "               (rendezvous, each collective) before its job fails (default 120)\n"
      "  --name NAME  this worker's id (one per GPU: NAME-cudaN); with segqatd --auth-tokens\n"
      "               it must be one the worker token's NAME allows (NAME, NAME-*, PREFIX*)\n";
  if (flags.ok() && flags->Has("--help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (!flags.ok() || !flags->overrides.empty() || !flags->Has("--server")) {
    spdlog::error("{}\n{}",
                  !flags.ok() ? std::string(flags.status().message())
                              : std::string("--server HOST:PORT is required"),
                  kUsage);
    return 2;
  }
  if (flags->Has("--threads")) {
    int threads = 0;
    if (!absl::SimpleAtoi(flags->Get("--threads"), &threads) || threads < 1) {
      spdlog::error("--threads: expects a number >= 1");
      return 2;
    }
    at::set_num_threads(threads);  // per process: share the cores with other workers
  }
  int collective_timeout = 120;
  if (flags->Has("--collective-timeout") &&
      (!absl::SimpleAtoi(flags->Get("--collective-timeout"), &collective_timeout) ||
       collective_timeout < 1 || collective_timeout > 86400)) {
    spdlog::error("--collective-timeout: expects seconds from 1 to 86400");
    return 2;
  }
  auto gpus = ParseGpus(flags->Get("--gpus", "all"));
  if (!gpus.ok()) {
    spdlog::error("{}", std::string(gpus.status().message()));
    return 2;
  }
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  const std::string name = flags->Get("--name", host);
  const std::string work_dir = flags->Get("--work-dir", "./segqat-worker-data");
  // Data-parallel peers reach a rank 0 here: this machine's name, or the
  // loopback address when the server is on loopback too.
  const std::string server = flags->Get("--server");
  const bool loopback = server.rfind("127.", 0) == 0 || server.rfind("localhost", 0) == 0 ||
                        server.rfind("[::1]", 0) == 0;
  const std::string address =
      flags->Get("--advertise-address", loopback ? std::string("127.0.0.1") : std::string(host));
  client::ChannelOptions channel_options;
  auto token = client::ReadToken(flags->Get("--token-file", ""));
  if (!token.ok()) {
    spdlog::error("{}", std::string(token.status().message()));
    return 2;
  }
  channel_options.token = *token;
  channel_options.tls_ca = flags->Get("--tls-ca", "");
  channel_options.tls_cert = flags->Get("--tls-cert", "");
  channel_options.tls_key = flags->Get("--tls-key", "");
  auto connected = client::Connect(flags->Get("--server"), channel_options);
  if (!connected.ok()) {
    spdlog::error("{}", std::string(connected.status().message()));
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel = *connected;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::atomic<bool> quit{false};
  std::atomic<int> failed{0};
  std::vector<std::thread> agents;
  ::umask(077);  // inputs, snapshots and logs are the worker user's alone
  agent::SweepStaleTemporaries(work_dir);
  if (flags->Has("--data-root")) {
    // Every file a job reads is opened beneath one of these, link by link.
    std::vector<std::string> roots = flags->values.at("--data-root");
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    roots.push_back(work_dir);
    data::ConfineReads(roots);
  }
  // One agent per GPU, or one on the CPU.
  std::vector<std::vector<int>> slots;
  for (int g : *gpus) slots.push_back({g});
  if (slots.empty()) slots.push_back({});
  for (const auto& slot : slots) {
    agent::AgentOptions o;
    o.worker_id = slot.empty() ? name : absl::StrCat(name, "-cuda", slot[0]);
    o.host = host;
    o.gpus = slot;
    o.work_dir = work_dir;
    o.address = address;
    o.collective_timeout = std::chrono::seconds(collective_timeout);
    if (flags->Has("--data-root")) o.data_roots = flags->values.at("--data-root");
    spdlog::info("worker {} serving {} on {}", o.worker_id,
                 slot.empty() ? std::string("cpu") : absl::StrCat("cuda:", slot[0]),
                 flags->Get("--server"));
    agents.emplace_back([channel, o, &quit, &failed] {
      agent::Agent a(channel, o);
      if (!a.Run(&quit).ok()) ++failed;
    });
  }
  while (g_stop == 0 && failed.load() < static_cast<int>(agents.size())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (g_stop != 0) spdlog::info("stopping: running jobs snapshot and go back to the queue");
  quit = true;
  for (auto& t : agents) t.join();
  return failed.load() > 0 ? 1 : 0;
}

}  // namespace segqat
