// GuardedServer: an httplib::Server that a few slow or greedy clients cannot
// take over. httplib gives each connection a pool thread and bounds each
// read() by a timeout, so a client that sends one header byte per second
// holds its thread for ever; enough of them and /metrics and /healthz stop
// answering. GuardedServer serves connections itself (httplib's request
// parsing and routing unchanged) and adds:
//   - a deadline per request: its request line and headers must arrive within
//     `request_deadline` of its first byte, or the connection is closed;
//   - a cap per client address: a client holding `connections_per_client`
//     connections gets "503 Service Unavailable" for the next one, so it can
//     hold at most that many pool threads.
#ifndef SEGQAT_METRICS_GUARDED_SERVER_H_
#define SEGQAT_METRICS_GUARDED_SERVER_H_

#include <httplib.h>

#include <map>
#include <mutex>
#include <string>

#include "metrics/http_exporter.h"

namespace segqat::metrics {

class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(HttpLimits limits) : limits_(limits) {}

  // After binding: httplib listens with a backlog of 5, so a burst of
  // connections would leave later ones (a probe among them) waiting for SYN
  // retransmits, seconds, before they are even accepted. Linux takes a second
  // listen() on a listening socket as a new backlog.
  void WidenBacklog();

 private:
  // Called by httplib on a pool thread for each accepted connection; serves
  // its keep-alive requests and closes it.
  bool process_and_close_socket(socket_t sock) override;

  bool Admit(const std::string& client);
  void Release(const std::string& client);

  const HttpLimits limits_;
  std::mutex mu_;
  std::map<std::string, int> open_;  // client address -> connections being served
};

}  // namespace segqat::metrics

#endif  // SEGQAT_METRICS_GUARDED_SERVER_H_
