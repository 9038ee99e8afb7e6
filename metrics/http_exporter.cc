#include "metrics/http_exporter.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "metrics/guarded_server.h"
#include "metrics/text_format.h"

namespace segqat::metrics {
namespace {

// Threads answering requests. Scrapes are rare and short, but each
// connection holds a thread while it is read: with these many threads, a
// short read timeout, a deadline per request and a cap per client, a few slow
// or stalled clients cannot keep /healthz and /metrics from answering.
constexpr size_t kServingThreads = 16;
constexpr int kReadTimeoutSeconds = 2;

// SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would
// let a second process silently share (and split) the port.
void SetSocketOptions(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

absl::Status ParseHostPort(const std::string& host_port, std::string* host, int* port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", host_port, "\" is not HOST:PORT"));
  }
  std::string h = host_port.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address \"", host_port,
                                                   "\": write IPv6 hosts in brackets, [::1]:9090"));
  }
  int p;
  if (!absl::SimpleAtoi(host_port.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", host_port, "\" has no port in 0..65535"));
  }
  // An empty host is loopback: listening on every interface is said explicitly.
  *host = h.empty() ? "127.0.0.1" : h;
  *port = p;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpExporter>> HttpExporter::Start(
    const std::string& host_port, const Registry* registry,
    std::function<bool(const std::string& authorization)> authorize, HttpLimits limits) {
  std::string host;
  int port;
  if (absl::Status s = ParseHostPort(host_port, &host, &port); !s.ok()) return s;

  auto server = std::make_unique<GuardedServer>(limits);
  server->new_task_queue = [] { return new httplib::ThreadPool(kServingThreads); };
  server->set_socket_options(SetSocketOptions);
  server->set_read_timeout(kReadTimeoutSeconds, 0);
  server->set_write_timeout(5, 0);
  server->set_keep_alive_timeout(2);
  server->Get("/metrics",
              [registry, authorize](const httplib::Request& req, httplib::Response& res) {
                if (authorize && !authorize(req.get_header_value("Authorization"))) {
                  res.status = 401;
                  res.set_header("WWW-Authenticate", "Bearer");
                  res.set_content("a token is required: Authorization: Bearer TOKEN\n",
                                  "text/plain; charset=utf-8");
                  return;
                }
                res.set_content(registry->Serialize(), kTextFormatContentType);
              });
  server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });

  const int bound =
      port == 0 ? server->bind_to_any_port(host) : (server->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics address ", host_port, ": cannot bind (in use or not local)"));
  }
  server->WidenBacklog();
  return std::unique_ptr<HttpExporter>(new HttpExporter(std::move(server), host, bound));
}

HttpExporter::HttpExporter(std::unique_ptr<httplib::Server> server, std::string host, int port)
    : server_(std::move(server)), host_(std::move(host)), port_(port) {
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  // httplib's stop() does nothing until the server runs, so a Stop() right
  // after Start() could otherwise leave the thread listening forever.
  while (!server_->is_running() && !listen_returned_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

HttpExporter::~HttpExporter() { Stop(); }

void HttpExporter::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace segqat::metrics
