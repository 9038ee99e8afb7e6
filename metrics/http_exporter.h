// HttpExporter: an HTTP endpoint for Prometheus to scrape, served on its own
// threads (cpp-httplib) from a Registry:
//   GET /metrics   Registry::Serialize(), Content-Type kTextFormatContentType
//   GET /healthz   "ok\n"
// Anything else is 404. Plain HTTP; /metrics may require an Authorization
// header that `authorize` accepts (401 otherwise); /healthz is always open.
// Slow and greedy clients are bounded by HttpLimits (see GuardedServer).
#ifndef SEGQAT_METRICS_HTTP_EXPORTER_H_
#define SEGQAT_METRICS_HTTP_EXPORTER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace segqat::metrics {

// What one client may take of the exporter's 16 serving threads.
struct HttpLimits {
  // A request's line and headers must arrive within this of its first byte.
  std::chrono::milliseconds request_deadline{5000};
  // Connections served at once per client address; more get a 503.
  int connections_per_client = 4;
};

class HttpExporter {
 public:
  // Binds `host_port` ("127.0.0.1:9090", "0.0.0.0:9090", "[::1]:9090", or
  // ":9090" for loopback; port 0 picks a free port, see port())
  // and starts serving. InvalidArgument for a malformed address, Unavailable
  // naming the address when it cannot be bound (in use, not local).
  // `registry` must outlive the exporter. With `authorize`, /metrics answers
  // 401 unless it returns true for the request's Authorization header.
  static absl::StatusOr<std::unique_ptr<HttpExporter>> Start(
      const std::string& host_port, const Registry* registry,
      std::function<bool(const std::string& authorization)> authorize = nullptr,
      HttpLimits limits = {});

  // Stops serving (see Stop).
  ~HttpExporter();
  HttpExporter(const HttpExporter&) = delete;
  HttpExporter& operator=(const HttpExporter&) = delete;

  // Closes the listening socket and waits for the serving threads to finish
  // their requests. Idempotent and thread-safe.
  void Stop();

  // The bound host (without brackets) and port; the real port when 0 was asked.
  const std::string& host() const { return host_; }
  int port() const { return port_; }

 private:
  HttpExporter(std::unique_ptr<httplib::Server> server, std::string host, int port);

  std::unique_ptr<httplib::Server> server_;
  const std::string host_;
  const int port_;
  std::atomic<bool> listen_returned_{false};
  std::mutex stop_mu_;
  std::thread thread_;  // Runs listen_after_bind until Stop.
};

// Splits "host:port" (host may be "[v6 address]" or empty, meaning
// "127.0.0.1"); InvalidArgument naming the address when malformed or the port
// is outside 0..65535.
absl::Status ParseHostPort(const std::string& host_port, std::string* host, int* port);

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_HTTP_EXPORTER_H_
