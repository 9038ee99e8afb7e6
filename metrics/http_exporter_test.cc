#include "metrics/http_exporter.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/text_format.h"

namespace segqat::metrics {
namespace {

using ::testing::HasSubstr;

// A TCP connection to the exporter from `source` (any 127/8 address is this
// host: tests play several clients that way).
int Connect(int port, const char* source = "127.0.0.1") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) return -1;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return -1;
  return fd;
}

// What the server sends on `fd` until it closes or `seconds` pass.
std::string ReadUntilClosed(int fd, double seconds, bool* closed) {
  std::string got;
  *closed = false;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// /healthz from `source` with a liveness probe's patience (1 s).
bool HealthAnswers(int port, const char* source) {
  const int fd = Connect(port, source);
  if (fd < 0) return false;
  const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  send(fd, get, sizeof get - 1, MSG_NOSIGNAL);
  bool closed;
  const std::string got = ReadUntilClosed(fd, 1.0, &closed);
  close(fd);
  return got.rfind("HTTP/1.1 200", 0) == 0 && got.find("\r\n\r\nok\n") != std::string::npos;
}

TEST(HttpExporterTest, StalledClientsDoNotBlockHealth) {
  Registry registry;
  auto exporter = HttpExporter::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  // Clients that send half a request and then nothing, each from its own
  // address, so that each holds a thread until the read timeout.
  std::vector<int> stalled;
  for (int i = 0; i < 12; ++i) {
    const std::string source = "127.0.1." + std::to_string(i + 1);
    const int fd = Connect((*exporter)->port(), source.c_str());
    ASSERT_GE(fd, 0);
    const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    ASSERT_GT(send(fd, partial, sizeof partial - 1, 0), 0);
    stalled.push_back(fd);
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(HealthAnswers((*exporter)->port(), "127.0.0.1"));
  for (int fd : stalled) close(fd);
}

// Slowloris: a byte every 100 ms keeps every read within its 2 s timeout; the
// request's deadline still closes the connection before the headers end.
TEST(HttpExporterTest, HeadersThatDribbleInAreCutAtTheDeadline) {
  Registry registry;
  HttpLimits limits;
  limits.request_deadline = std::chrono::milliseconds(1000);
  auto exporter = HttpExporter::Start("127.0.0.1:0", &registry, nullptr, limits);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const int fd = Connect((*exporter)->port());
  ASSERT_GE(fd, 0);
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(40, 'a') +
      "\r\n\r\n";  // 4 s at 10 bytes/s
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  std::string got;
  for (char c : request) {
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    got += ReadUntilClosed(fd, 0.1, &closed);
    if (closed) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(got, "");  // never answered: the request did not arrive in time
  EXPECT_GE(seconds, 0.9);
  EXPECT_LT(seconds, 2.5);
}

// One client address holds at most 4 of the 16 threads, however many
// connections it opens and however slowly it sends; others are still served.
TEST(HttpExporterTest, OneClientCannotHoldEveryThread) {
  Registry registry;
  auto exporter = HttpExporter::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const int port = (*exporter)->port();
  std::vector<int> greedy;
  for (int i = 0; i < 20; ++i) {
    const int fd = Connect(port, "127.0.0.2");
    ASSERT_GE(fd, 0);
    greedy.push_back(fd);
  }
  // The connections past the 4th are answered 503 and closed at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int refused = 0;
  std::vector<int> held;
  for (int fd : greedy) {
    bool closed;
    const std::string got = ReadUntilClosed(fd, 0.05, &closed);
    if (closed && got.rfind("HTTP/1.1 503", 0) == 0) {
      ++refused;
    } else {
      held.push_back(fd);
    }
  }
  // The 4 it holds send slowly, each read within the read timeout.
  for (int round = 0; round < 3; ++round) {
    for (int fd : held) send(fd, round == 0 ? "G" : "E", 1, MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(refused, 16);
  EXPECT_TRUE(HealthAnswers(port, "127.0.0.3"));
  EXPECT_TRUE(HealthAnswers(port, "127.0.0.4"));
  for (int fd : greedy) close(fd);
}

TEST(HttpExporterTest, ServesMetricsAndHealth) {
  Registry registry;
  (*registry.AddGauge("segqat_build_info", "Build.", {"version"}))
      ->WithLabels({{"version", "0.1.0"}})
      .Set(1);
  absl::StatusOr<std::unique_ptr<HttpExporter>> exporter =
      HttpExporter::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_GT((*exporter)->port(), 0);
  EXPECT_EQ((*exporter)->host(), "127.0.0.1");

  httplib::Client client("127.0.0.1", (*exporter)->port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics->get_header_value("Content-Type"), kTextFormatContentType);
  EXPECT_EQ(metrics->body, registry.Serialize());
  EXPECT_THAT(metrics->body, HasSubstr("segqat_build_info{version=\"0.1.0\"} 1\n"));

  httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");

  httplib::Result missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  (*exporter)->Stop();
  (*exporter)->Stop();  // Idempotent.
  httplib::Client after("127.0.0.1", (*exporter)->port());
  after.set_connection_timeout(2);
  EXPECT_FALSE(after.Get("/healthz"));
}

TEST(HttpExporterTest, PortInUseIsAnErrorNamingTheAddress) {
  Registry registry;
  absl::StatusOr<std::unique_ptr<HttpExporter>> first =
      HttpExporter::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string address = "127.0.0.1:" + std::to_string((*first)->port());
  absl::StatusOr<std::unique_ptr<HttpExporter>> second = HttpExporter::Start(address, &registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(address));
}

TEST(HttpExporterTest, UnbindableOrMalformedAddresses) {
  Registry registry;
  // 192.0.2.0/24 is TEST-NET-1: never a local address.
  absl::StatusOr<std::unique_ptr<HttpExporter>> foreign =
      HttpExporter::Start("192.0.2.1:0", &registry);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(foreign.status().message(), HasSubstr("192.0.2.1:0"));
  for (const char* bad : {"9090", "host:", "host:http", "127.0.0.1:70000", "::1:9090"}) {
    absl::StatusOr<std::unique_ptr<HttpExporter>> e = HttpExporter::Start(bad, &registry);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(e.status().message(), HasSubstr(bad));
  }
}

TEST(HttpExporterTest, StopRightAfterStartReturns) {
  Registry registry;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::unique_ptr<HttpExporter>> e = HttpExporter::Start("127.0.0.1:0", &registry);
    ASSERT_TRUE(e.ok()) << e.status();
    // The destructor stops it; the test would hang if that raced with startup.
  }
}

TEST(ParseHostPortTest, Forms) {
  std::string host;
  int port;
  ASSERT_TRUE(ParseHostPort("0.0.0.0:9090", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 9090);
  ASSERT_TRUE(ParseHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(ParseHostPort(":9091", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");  // all interfaces only when asked: 0.0.0.0:9091
  EXPECT_EQ(port, 9091);
}

}  // namespace
}  // namespace segqat::metrics
