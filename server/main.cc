// segqatd: the segqat job server.
//   segqatd [--listen HOST:PORT] [--data-dir DIR] [--local-workers N]
//           [--metrics-address HOST:PORT] [--lease-timeout SECONDS]
//           [--auth-tokens FILE] [--insecure] [--data-root DIR ...]
//           [--max-config-bytes N] [--max-queued-per-token N] [--max-message-bytes N]
//           [--retention HOURS] [--max-watchers-per-connection N] [--max-downloads N]
//           [--download-stall-timeout SECONDS] [--metrics-auth] [--keep-snapshots K]
//           [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
// Defaults: 127.0.0.1:50051, ./segqat-data, one embedded worker per GPU (one
// CPU worker where there is none). Embedded workers are the same agent as
// `segqat-worker serve`, over an in-process channel; --local-workers 0 runs
// no engine, and jobs wait for remote workers. SIGTERM/SIGINT: stop
// accepting work, snapshot the embedded workers' jobs (they resume on the
// next start) and exit; remote workers' leases survive the restart.
// Security: --auth-tokens FILE turns on tokens and roles (server/auth.h);
// without it segqatd listens only on loopback unless --insecure is given.
// --tls-cert/--tls-key serve TLS; --tls-client-ca also asks clients for a
// certificate and verifies it, and requires one for the worker RPCs.
#include <ATen/Parallel.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/channel.h"
#include "engine/data/confined_read.h"
#include "engine/runtime/job_runner.h"
#include "job/flags.h"
#include "metrics/http_exporter.h"
#include "metrics/registry.h"
#include "server/artifact_store.h"
#include "server/auth.h"
#include "server/bad_request.h"
#include "server/event_bus.h"
#include "server/job_service.h"
#include "server/job_store.h"
#include "server/scheduler.h"
#include "server/server_metrics.h"
#include "server/transport_security.h"
#include "server/worker_service.h"
#include "worker/agent.h"
#include "worker/work_dir.h"

namespace {

volatile std::sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }

constexpr char kUsage[] =
    "usage: segqatd [--listen HOST:PORT] [--data-dir DIR] [--local-workers N]\n"
    "               [--metrics-address HOST:PORT] [--metrics-auth] [--lease-timeout SECONDS]\n"
    "               [--auth-tokens FILE] [--insecure] [--data-root DIR ...]\n"
    "               [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
    "               [--max-config-bytes N] [--max-queued-per-token N] [--max-message-bytes N]\n"
    "               [--retention HOURS] [--max-watchers-per-connection N] [--max-downloads N]\n"
    "               [--keep-snapshots K] [--max-attempts N] [--download-stall-timeout SECONDS]\n"
    "  --max-attempts N  a job whose worker is lost N times (crash, OOM kill, expired lease)\n"
    "                    ends FAILED instead of running again (default 3)\n"
    "  --download-stall-timeout SECONDS  a ReadArtifact stream whose client reads nothing\n"
    "                    for this long is cancelled and frees its slot (default 60; 0: never)\n"
    "  README.md and docs/deployment.md describe every flag.\n";

// What segqatd runs with, from its flags.
struct Settings {
  segqat::ParsedFlags flags;
  std::string listen, data_dir;
  segqat::server::JobLimits limits;
  int64_t max_message_bytes = 8 << 20;
  int64_t watchers = 32, downloads = 64, stall_seconds = 60;
  int64_t keep_snapshots = 2, max_attempts = 3, retention_hours = 0;
  bool gpu = false;
  int workers = 1;  // embedded workers
  double lease_timeout = 5;
};

// Reads the flags into *s. Returns -1 to go on, else the exit code: 0 after
// --help, 2 for a malformed command line, 1 for a value out of range.
int ParseSettings(int argc, char** argv, Settings* s) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = segqat::ParseFlags(args, {{"--listen", true},
                                         {"--data-dir", true},
                                         {"--local-workers", true},
                                         {"--metrics-address", true},
                                         {"--lease-timeout", true},
                                         {"--auth-tokens", true},
                                         {"--insecure", false},
                                         {"--tls-cert", true},
                                         {"--tls-key", true},
                                         {"--tls-client-ca", true},
                                         {"--data-root", true, true},
                                         {"--max-config-bytes", true},
                                         {"--max-queued-per-token", true},
                                         {"--max-message-bytes", true},
                                         {"--retention", true},
                                         {"--max-watchers-per-connection", true},
                                         {"--max-downloads", true},
                                         {"--download-stall-timeout", true},
                                         {"--metrics-auth", false},
                                         {"--keep-snapshots", true},
                                         {"--max-attempts", true},
                                         {"--help", false}});
  if (flags.ok() && flags->Has("--help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (!flags.ok() || !flags->overrides.empty()) {
    spdlog::error("{}\n{}",
                  flags.ok() ? "unexpected arguments" : std::string(flags.status().message()),
                  kUsage);
    return 2;
  }
  s->flags = *std::move(flags);
  const segqat::ParsedFlags& f = s->flags;
  s->listen = f.Get("--listen", "127.0.0.1:50051");
  s->data_dir = f.Get("--data-dir", "./segqat-data");
  int64_t max_queued = s->limits.max_queued_per_owner;
  auto limit = [&](const char* flag, int64_t* value, int64_t low, int64_t high) {
    if (!f.Has(flag)) return true;
    if (absl::SimpleAtoi(f.Get(flag), value) && *value >= low && *value <= high) return true;
    spdlog::error("{}: expects a number from {} to {}", flag, low, high);
    return false;
  };
  if (!limit("--max-config-bytes", &s->limits.max_config_bytes, 1024, int64_t{64} << 20) ||
      !limit("--max-queued-per-token", &max_queued, 1, 1000000) ||
      !limit("--max-message-bytes", &s->max_message_bytes, 1 << 20, 64 << 20) ||
      !limit("--max-watchers-per-connection", &s->watchers, 1, 100000) ||
      !limit("--max-downloads", &s->downloads, 1, 100000) ||
      !limit("--download-stall-timeout", &s->stall_seconds, 0, 86400) ||
      !limit("--keep-snapshots", &s->keep_snapshots, 1, 1000) ||
      !limit("--max-attempts", &s->max_attempts, 1, 1000) ||
      !limit("--retention", &s->retention_hours, 1, 24 * 365 * 10)) {
    return 1;
  }
  s->limits.max_queued_per_owner = static_cast<int>(max_queued);
  // A job must fit in the messages that carry it.
  s->limits.max_config_bytes = std::min(s->limits.max_config_bytes, s->max_message_bytes / 2);
  s->gpu = torch::cuda::is_available();
  s->workers = s->gpu ? static_cast<int>(torch::cuda::device_count()) : 1;
  if (f.Has("--local-workers") &&
      (!absl::SimpleAtoi(f.Get("--local-workers"), &s->workers) || s->workers < 0)) {
    spdlog::error("--local-workers: expects a number >= 0");
    return 2;
  }
  if (f.Has("--lease-timeout") && (!absl::SimpleAtod(f.Get("--lease-timeout"), &s->lease_timeout) ||
                                   !(s->lease_timeout >= 0.5 && s->lease_timeout <= 3600))) {
    spdlog::error("--lease-timeout: expects seconds between 0.5 and 3600");
    return 2;
  }
  return -1;
}

// Tokens and roles (--auth-tokens), the refusal to listen beyond loopback
// without them, and the transport's credentials.
absl::Status SetUpSecurity(const Settings& s, segqat::server::Auth* auth,
                           std::shared_ptr<grpc::ServerCredentials>* credentials) {
  const segqat::ParsedFlags& f = s.flags;
  if (f.Has("--auth-tokens")) {
    auto loaded = segqat::server::Auth::FromFile(f.Get("--auth-tokens"));
    if (!loaded.ok()) return loaded.status();
    *auth = *std::move(loaded);
  } else if (!segqat::server::IsLoopback(s.listen) && !f.Has("--insecure")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen ", s.listen,
        ": without --auth-tokens every caller may do everything; segqatd listens beyond "
        "loopback only with --auth-tokens FILE (or --insecure)"));
  }
  auto creds = segqat::server::ServerCredentials(f);
  if (!creds.ok()) return creds.status();
  *credentials = *std::move(creds);
  if (f.Has("--tls-client-ca")) auth->RequireWorkerCertificates();
  return absl::OkStatus();
}

// Jobs, tokens' owners and models are nobody else's business: every file
// segqatd makes is its user's alone (0600, folders 0700), and so are the
// data folder and job database a previous version left open.
absl::Status PrepareDataDir(const std::string& data_dir) {
  ::umask(077);
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-dir: cannot create ", data_dir, ": ", ec.message()));
  }
  std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all, ec);
  for (const char* db : {"/jobs.db", "/jobs.db-wal", "/jobs.db-shm"}) {
    std::error_code missing;
    std::filesystem::permissions(
        data_dir + db, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        missing);
  }
  return absl::OkStatus();
}

// /metrics and /healthz on --metrics-address (behind a token with
// --metrics-auth); null without the flag.
absl::StatusOr<std::unique_ptr<segqat::metrics::HttpExporter>> StartExporter(
    const Settings& s, segqat::metrics::Registry* registry, const segqat::server::Auth& auth) {
  const segqat::ParsedFlags& f = s.flags;
  if (!f.Has("--metrics-address")) return std::unique_ptr<segqat::metrics::HttpExporter>();
  std::function<bool(const std::string&)> authorize;
  if (f.Has("--metrics-auth")) {
    if (!auth.enabled()) return absl::InvalidArgumentError("--metrics-auth needs --auth-tokens");
    authorize = [&auth](const std::string& header) { return auth.KnowsBearer(header); };
  }
  auto started =
      segqat::metrics::HttpExporter::Start(f.Get("--metrics-address"), registry, authorize);
  if (!started.ok()) {
    return absl::Status(started.status().code(),
                        absl::StrCat("--metrics-address: ", started.status().message()));
  }
  spdlog::info("metrics on http://{}:{}/metrics", (*started)->host(), (*started)->port());
  return started;
}

// The gRPC server with both services, listening; *port is the bound port.
std::unique_ptr<grpc::Server> StartServer(const Settings& s, const segqat::server::Auth& auth,
                                          const std::shared_ptr<grpc::ServerCredentials>& creds,
                                          grpc::Service* jobs, grpc::Service* workers, int* port) {
  grpc::EnableDefaultHealthCheckService(true);  // open to all: liveness probes
  // Reflection lists the API to anyone; only where anyone may call it anyway.
  if (!auth.enabled()) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (auth.enabled()) builder.SetOption(std::make_unique<segqat::server::WithoutReflection>());
  builder.AddListeningPort(s.listen, creds, port);
  builder.RegisterService(jobs);
  builder.RegisterService(workers);
  builder.SetMaxSendMessageSize(static_cast<int>(s.max_message_bytes));
  builder.SetMaxReceiveMessageSize(static_cast<int>(s.max_message_bytes));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<segqat::server::BadRequestInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  return builder.BuildAndStart();
}

// The embedded workers: agents over an in-process channel, with the
// server's message limits (a job the server accepted always reaches them)
// and its own token.
std::vector<std::thread> StartEmbeddedWorkers(const Settings& s, grpc::Server* server,
                                              const std::string& local_token,
                                              std::atomic<bool>* quit) {
  std::vector<std::thread> agents;
  const segqat::ParsedFlags& f = s.flags;
  if (s.workers > 0) segqat::agent::SweepStaleTemporaries(s.data_dir + "/work");
  if (f.Has("--data-root")) {
    // Every file a job reads is opened beneath one of these, link by link.
    std::vector<std::string> roots = f.values.at("--data-root");
    std::error_code ec;
    std::filesystem::create_directories(s.data_dir + "/work", ec);
    roots.push_back(s.data_dir + "/work");
    segqat::data::ConfineReads(roots);
  }
  for (int i = 0; i < s.workers; ++i) {
    segqat::agent::AgentOptions aopt;
    aopt.worker_id = absl::StrCat("local-", i);
    aopt.host = "segqatd";
    if (s.gpu) aopt.gpus = {i};
    aopt.work_dir = s.data_dir + "/work";
    if (f.Has("--data-root")) aopt.data_roots = f.values.at("--data-root");
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(static_cast<int>(s.max_message_bytes));
    channel_args.SetMaxSendMessageSize(static_cast<int>(s.max_message_bytes));
    auto channel = server->experimental().InProcessChannelWithInterceptors(
        channel_args, segqat::client::TokenInterceptors(local_token));
    agents.emplace_back([channel, aopt, quit] {
      segqat::agent::Agent agent(channel, aopt);
      if (auto st = agent.Run(quit); !st.ok()) {
        spdlog::error("embedded worker {} stopped: {}", aopt.worker_id, st.ToString());
      }
    });
  }
  return agents;
}

int Run(int argc, char** argv) {
  Settings s;
  if (int code = ParseSettings(argc, argv, &s); code >= 0) return code;
  segqat::server::Auth auth;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (auto st = SetUpSecurity(s, &auth, &credentials); !st.ok()) {
    spdlog::error("{}", std::string(st.message()));
    return 1;
  }
  if (auto st = PrepareDataDir(s.data_dir); !st.ok()) {
    spdlog::error("{}", std::string(st.message()));
    return 1;
  }
  // The embedded CPU workers share the cores, with at least 2 threads each:
  // LibTorch 1.13 runs 1x1 convolutions 4x slower on one thread (no oneDNN).
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(s.gpu ? cores : std::max(2, cores / std::max(1, s.workers)));
  if (s.workers > 0) segqat::runtime::PrepareProcessForJobs();

  auto store =
      segqat::server::JobStore::Open(s.data_dir + "/jobs.db", segqat::server::SystemClock());
  if (!store.ok()) {
    spdlog::error("{}", store.status().ToString());
    return 1;
  }
  segqat::server::ArtifactStore artifacts(s.data_dir + "/artifacts");
  segqat::server::EventBus bus;
  segqat::server::SchedulerOptions sopt;
  sopt.retention = std::chrono::hours(s.retention_hours);
  sopt.keep_snapshots = static_cast<int>(s.keep_snapshots);
  sopt.max_lost_attempts = static_cast<int>(s.max_attempts);
  sopt.lease_timeout = std::chrono::milliseconds(static_cast<int64_t>(s.lease_timeout * 1000));
  // About three reports per lease timeout.
  sopt.report_interval = std::max(std::chrono::milliseconds(100), sopt.lease_timeout / 4);
  segqat::server::Scheduler scheduler(store->get(), &artifacts, &bus, sopt);
  segqat::metrics::Registry registry;
  auto metrics = segqat::server::ServerMetrics::Create(&registry, store->get(), [&scheduler] {
    std::map<std::string, int> by_state;
    for (const auto& w : scheduler.Workers()) ++by_state[w.state()];
    return by_state;
  });
  if (!metrics.ok()) {
    spdlog::error("metrics: {}", metrics.status().ToString());
    return 1;
  }
  scheduler.SetMetrics(metrics->get());
  if (auto st = scheduler.Start(); !st.ok()) {
    spdlog::error("cannot recover jobs: {}", st.ToString());
    return 1;
  }
  // The embedded workers' own token, known only to this process: only it
  // may use their ids (local-*), with or without --auth-tokens.
  const std::string local_token = segqat::server::RandomToken();
  auth.AddInternal(local_token);
  auto exporter = StartExporter(s, &registry, auth);
  if (!exporter.ok()) {
    spdlog::error("{}", std::string(exporter.status().message()));
    return 1;
  }
  segqat::server::JobServiceImpl service(store->get(), &artifacts, &bus, &scheduler, metrics->get(),
                                         &auth);
  service.SetLimits(s.limits);
  service.SetStreamLimits(static_cast<int>(s.watchers), static_cast<int>(s.downloads),
                          std::chrono::seconds(s.stall_seconds));
  segqat::server::WorkerServiceImpl worker_service(&scheduler, &artifacts, metrics->get(),
                                                   int64_t{8} << 30, &auth);
  int port = 0;
  std::unique_ptr<grpc::Server> server =
      StartServer(s, auth, credentials, &service, &worker_service, &port);
  if (!server || port == 0) {
    spdlog::error("--listen: cannot listen on {}", s.listen);
    return 1;
  }
  const std::string host = s.listen.substr(0, s.listen.rfind(':'));
  // The bound address, for tests and scripts that ask for port 0.
  spdlog::info("segqatd listening on {}:{} (data {}, {} {} worker{}; {}, {})", host, port,
               s.data_dir, s.workers, s.gpu ? "GPU" : "CPU", s.workers == 1 ? "" : "s",
               auth.enabled() ? "tokens" : "no auth",
               s.flags.Has("--tls-cert") ? (s.flags.Has("--tls-client-ca") ? "mutual TLS" : "TLS")
                                         : "plaintext");
  std::atomic<bool> quit{false};
  std::vector<std::thread> agents = StartEmbeddedWorkers(s, server.get(), local_token, &quit);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {}: stopping; running jobs snapshot and resume on the next start",
               static_cast<int>(g_signal));
  quit = true;
  for (auto& t : agents) t.join();
  scheduler.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (*exporter) (*exporter)->Stop();
  spdlog::info("segqatd stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S %^%l%$ %v");
  return Run(argc, argv);
}
