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
#include "server/worker_service.h"
#include "worker/agent.h"
#include "worker/work_dir.h"

namespace {

volatile std::sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }

bool IsLoopback(const std::string& listen) {
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0 ||
         listen.rfind("unix:", 0) == 0;
}

absl::StatusOr<std::string> ReadPem(const segqat::ParsedFlags& flags, const char* flag) {
  std::ifstream in(flags.Get(flag));
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", flags.Get(flag)));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Plaintext, TLS (--tls-cert, --tls-key) or TLS that asks clients for a
// certificate and verifies the ones presented (--tls-client-ca).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const segqat::ParsedFlags& flags) {
  if (!flags.Has("--tls-cert") && !flags.Has("--tls-key")) {
    if (flags.Has("--tls-client-ca")) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  auto cert = ReadPem(flags, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(flags, "--tls-key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (flags.Has("--tls-client-ca")) {
    auto ca = ReadPem(flags, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// Takes gRPC server reflection out of a builder: linking the reflection
// library registers it for every server, and with tokens it would list the
// API to callers that may call none of it.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return p->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

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

int Run(int argc, char** argv) {
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
  const std::string listen = flags->Get("--listen", "127.0.0.1:50051");
  const std::string data_dir = flags->Get("--data-dir", "./segqat-data");
  segqat::server::Auth auth;
  if (flags->Has("--auth-tokens")) {
    auto loaded = segqat::server::Auth::FromFile(flags->Get("--auth-tokens"));
    if (!loaded.ok()) {
      spdlog::error("{}", std::string(loaded.status().message()));
      return 1;
    }
    auth = *std::move(loaded);
  } else if (!IsLoopback(listen) && !flags->Has("--insecure")) {
    spdlog::error(
        "--listen {}: without --auth-tokens every caller may do everything; segqatd "
        "listens beyond loopback only with --auth-tokens FILE (or --insecure)",
        listen);
    return 1;
  }
  auto credentials = ServerCredentials(*flags);
  if (!credentials.ok()) {
    spdlog::error("{}", std::string(credentials.status().message()));
    return 1;
  }
  if (flags->Has("--tls-client-ca")) auth.RequireWorkerCertificates();
  segqat::server::JobLimits limits;
  int64_t max_message_bytes = 8 << 20;
  int64_t max_queued = limits.max_queued_per_owner;
  auto limit = [&](const char* flag, int64_t* value, int64_t low, int64_t high) {
    if (!flags->Has(flag)) return true;
    if (absl::SimpleAtoi(flags->Get(flag), value) && *value >= low && *value <= high) return true;
    spdlog::error("{}: expects a number from {} to {}", flag, low, high);
    return false;
  };
  if (!limit("--max-config-bytes", &limits.max_config_bytes, 1024, int64_t{64} << 20) ||
      !limit("--max-queued-per-token", &max_queued, 1, 1000000) ||
      !limit("--max-message-bytes", &max_message_bytes, 1 << 20, 64 << 20)) {
    return 1;
  }
  limits.max_queued_per_owner = static_cast<int>(max_queued);
  int64_t watchers = 32, downloads = 64, stall_seconds = 60;
  if (!limit("--max-watchers-per-connection", &watchers, 1, 100000) ||
      !limit("--max-downloads", &downloads, 1, 100000) ||
      !limit("--download-stall-timeout", &stall_seconds, 0, 86400)) {
    return 1;
  }
  int64_t keep_snapshots = 2;
  if (!limit("--keep-snapshots", &keep_snapshots, 1, 1000)) return 1;
  int64_t max_attempts = 3;
  if (!limit("--max-attempts", &max_attempts, 1, 1000)) return 1;
  int64_t retention_hours = 0;
  if (!limit("--retention", &retention_hours, 1, 24 * 365 * 10)) return 1;
  if (limits.max_config_bytes > max_message_bytes / 2) {
    limits.max_config_bytes =
        max_message_bytes / 2;  // a job must fit in the messages that carry it
  }
  const bool gpu = torch::cuda::is_available();
  int workers = gpu ? static_cast<int>(torch::cuda::device_count()) : 1;
  if (flags->Has("--local-workers") &&
      (!absl::SimpleAtoi(flags->Get("--local-workers"), &workers) || workers < 0)) {
    spdlog::error("--local-workers: expects a number >= 0");
    return 2;
  }
  double lease_timeout = 5;
  if (flags->Has("--lease-timeout") &&
      (!absl::SimpleAtod(flags->Get("--lease-timeout"), &lease_timeout) ||
       !(lease_timeout >= 0.5 && lease_timeout <= 3600))) {
    spdlog::error("--lease-timeout: expects seconds between 0.5 and 3600");
    return 2;
  }
  // Jobs, tokens' owners and models are nobody else's business: every file
  // segqatd makes is its user's alone (0600, folders 0700), and so are the
  // data folder and job database a previous version left open.
  ::umask(077);
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    spdlog::error("--data-dir: cannot create {}: {}", data_dir, ec.message());
    return 1;
  }
  std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all, ec);
  for (const char* db : {"/jobs.db", "/jobs.db-wal", "/jobs.db-shm"}) {
    std::error_code missing;
    std::filesystem::permissions(
        data_dir + db, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        missing);
  }
  // The embedded CPU workers share the cores, with at least 2 threads each:
  // LibTorch 1.13 runs 1x1 convolutions 4x slower on one thread (no oneDNN).
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(gpu ? cores : std::max(2, cores / std::max(1, workers)));
  if (workers > 0) segqat::runtime::PrepareProcessForJobs();

  auto store = segqat::server::JobStore::Open(data_dir + "/jobs.db", segqat::server::SystemClock());
  if (!store.ok()) {
    spdlog::error("{}", store.status().ToString());
    return 1;
  }
  segqat::server::ArtifactStore artifacts(data_dir + "/artifacts");
  segqat::server::EventBus bus;
  segqat::server::SchedulerOptions sopt;
  sopt.retention = std::chrono::hours(retention_hours);
  sopt.keep_snapshots = static_cast<int>(keep_snapshots);
  sopt.max_lost_attempts = static_cast<int>(max_attempts);
  sopt.lease_timeout = std::chrono::milliseconds(static_cast<int64_t>(lease_timeout * 1000));
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
  std::unique_ptr<segqat::metrics::HttpExporter> exporter;
  if (flags->Has("--metrics-address")) {
    std::function<bool(const std::string&)> authorize;
    if (flags->Has("--metrics-auth")) {
      if (!auth.enabled()) {
        spdlog::error("--metrics-auth needs --auth-tokens");
        return 1;
      }
      authorize = [&auth](const std::string& header) { return auth.KnowsBearer(header); };
    }
    auto started =
        segqat::metrics::HttpExporter::Start(flags->Get("--metrics-address"), &registry, authorize);
    if (!started.ok()) {
      spdlog::error("--metrics-address: {}", std::string(started.status().message()));
      return 1;
    }
    exporter = *std::move(started);
    spdlog::info("metrics on http://{}:{}/metrics", exporter->host(), exporter->port());
  }
  segqat::server::JobServiceImpl service(store->get(), &artifacts, &bus, &scheduler, metrics->get(),
                                         &auth);
  service.SetLimits(limits);
  service.SetStreamLimits(static_cast<int>(watchers), static_cast<int>(downloads),
                          std::chrono::seconds(stall_seconds));
  segqat::server::WorkerServiceImpl worker_service(&scheduler, &artifacts, metrics->get(),
                                                   int64_t{8} << 30, &auth);

  grpc::EnableDefaultHealthCheckService(true);  // open to all: liveness probes
  // Reflection lists the API to anyone; only where anyone may call it anyway.
  if (!auth.enabled()) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (auth.enabled()) builder.SetOption(std::make_unique<WithoutReflection>());
  int port = 0;
  builder.AddListeningPort(listen, *credentials, &port);
  builder.RegisterService(&service);
  builder.RegisterService(&worker_service);
  builder.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<segqat::server::BadRequestInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::error("--listen: cannot listen on {}", listen);
    return 1;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  // The bound address, for tests and scripts that ask for port 0.
  spdlog::info("segqatd listening on {}:{} (data {}, {} {} worker{}; {}, {})", host, port, data_dir,
               workers, gpu ? "GPU" : "CPU", workers == 1 ? "" : "s",
               auth.enabled() ? "tokens" : "no auth",
               flags->Has("--tls-cert") ? (flags->Has("--tls-client-ca") ? "mutual TLS" : "TLS")
                                        : "plaintext");

  // The embedded workers: agents over an in-process channel.
  std::atomic<bool> quit{false};
  std::vector<std::thread> agents;
  if (workers > 0) segqat::agent::SweepStaleTemporaries(data_dir + "/work");
  if (flags->Has("--data-root")) {
    // Every file a job reads is opened beneath one of these, link by link.
    std::vector<std::string> roots = flags->values.at("--data-root");
    std::filesystem::create_directories(data_dir + "/work", ec);
    roots.push_back(data_dir + "/work");
    segqat::data::ConfineReads(roots);
  }
  for (int i = 0; i < workers; ++i) {
    segqat::agent::AgentOptions aopt;
    aopt.worker_id = absl::StrCat("local-", i);
    aopt.host = "segqatd";
    if (gpu) aopt.gpus = {i};
    aopt.work_dir = data_dir + "/work";
    if (flags->Has("--data-root")) aopt.data_roots = flags->values.at("--data-root");
    // The same message limits as the server's: a job the server accepted
    // always reaches its embedded workers.
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
    channel_args.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
    auto channel = server->experimental().InProcessChannelWithInterceptors(
        channel_args, segqat::client::TokenInterceptors(local_token));
    agents.emplace_back([channel, aopt, &quit] {
      segqat::agent::Agent agent(channel, aopt);
      if (auto st = agent.Run(&quit); !st.ok()) {
        spdlog::error("embedded worker {} stopped: {}", aopt.worker_id, st.ToString());
      }
    });
  }

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {}: stopping; running jobs snapshot and resume on the next start",
               static_cast<int>(g_signal));
  quit = true;
  for (auto& t : agents) t.join();
  scheduler.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (exporter) exporter->Stop();
  spdlog::info("segqatd stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S %^%l%$ %v");
  return Run(argc, argv);
}
