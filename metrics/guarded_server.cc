#include "metrics/guarded_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace segqat::metrics {
namespace {

using Clock = std::chrono::steady_clock;

int Millis(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

// Waits up to `timeout_ms` for `events` on `sock`; false on timeout or error.
bool WaitFor(socket_t sock, short events, int timeout_ms) {
  if (timeout_ms <= 0) return false;
  pollfd p{sock, events, 0};
  int n;
  do {
    n = poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

std::string Address(const sockaddr_storage& addr, int* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    if (port != nullptr) *port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    if (port != nullptr) *port = ntohs(a->sin6_port);
  }
  return text;
}

std::string PeerAddress(socket_t sock, int* port = nullptr) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  return Address(addr, port);
}

// A socket stream whose reads end at the current request's deadline as well
// as at the per-read timeout. Reads are buffered, as httplib's own stream
// does: its line reader asks for one byte at a time.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(socket_t sock, int read_timeout_ms, int write_timeout_ms)
      : sock_(sock), read_timeout_ms_(read_timeout_ms), write_timeout_ms_(write_timeout_ms) {}

  void StartRequest(Clock::time_point deadline) { deadline_ = deadline; }
  bool HasBuffered() const { return off_ < len_; }

  bool is_readable() const override {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    return WaitFor(sock_, POLLIN, static_cast<int>(std::min<int64_t>(read_timeout_ms_, left)));
  }
  bool is_writable() const override { return WaitFor(sock_, POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (!HasBuffered()) {
      if (!is_readable()) return -1;
      ssize_t n;
      do {
        n = recv(sock_, buffer_, sizeof buffer_, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buffer_ + off_, n);
    off_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = PeerAddress(sock_, &port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      ip = Address(addr, &port);
    }
  }
  socket_t socket() const override { return sock_; }

 private:
  const socket_t sock_;
  const int read_timeout_ms_;
  const int write_timeout_ms_;
  Clock::time_point deadline_ = Clock::now();
  char buffer_[4096];
  size_t off_ = 0;
  size_t len_ = 0;
};

constexpr char kBusy[] =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 39\r\n"
    "Connection: close\r\n"
    "\r\n"
    "too many connections from this client\n";

}  // namespace

void GuardedServer::WidenBacklog() {
  const socket_t sock = svr_sock_;
  if (sock != INVALID_SOCKET) ::listen(sock, SOMAXCONN);
}

bool GuardedServer::Admit(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  int& open = open_[client];
  if (open >= limits_.connections_per_client) return false;
  ++open;
  return true;
}

void GuardedServer::Release(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(client);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  const std::string client = PeerAddress(sock);
  bool ok = false;
  if (!Admit(client)) {
    // Best effort, never waiting: the client learns why before the close.
    send(sock, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  } else {
    DeadlineStream stream(sock, Millis(read_timeout_sec_, read_timeout_usec_),
                          Millis(write_timeout_sec_, write_timeout_usec_));
    for (size_t left = keep_alive_max_count_; left > 0; --left) {
      // Between requests the connection may idle for the keep-alive timeout,
      // checked in slices so that a stopping server does not wait for it.
      const Clock::time_point idle_end =
          Clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
      bool readable = stream.HasBuffered();
      while (!readable && svr_sock_ != INVALID_SOCKET && Clock::now() < idle_end) {
        readable = WaitFor(sock, POLLIN, 100);
      }
      if (!readable || svr_sock_ == INVALID_SOCKET) break;
      stream.StartRequest(Clock::now() + limits_.request_deadline);
      bool closed = false;
      ok = process_request(stream, /*close_connection=*/left == 1, closed, nullptr);
      if (!ok || closed) break;
    }
    Release(client);
  }
  shutdown(sock, SHUT_RDWR);
  close(sock);
  return ok;
}

}  // namespace segqat::metrics
