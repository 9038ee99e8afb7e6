#include "metrics/http_exporter.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/text_format.h"

namespace segqat::metrics {
namespace {

using ::testing::HasSubstr;

TEST(HttpExporterTest, StalledClientsDoNotBlockHealth) {
  Registry registry;
  auto exporter = HttpExporter::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  // Clients that send half a request and then nothing, each holding a thread.
  std::vector<int> stalled;
  for (int i = 0; i < 12; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>((*exporter)->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    ASSERT_GT(send(fd, partial, sizeof partial - 1, 0), 0);
    stalled.push_back(fd);
  }
  httplib::Client client("127.0.0.1", (*exporter)->port());
  client.set_connection_timeout(3);
  client.set_read_timeout(3);  // a liveness probe's patience
  for (int i = 0; i < 3; ++i) {
    httplib::Result health = client.Get("/healthz");
    ASSERT_TRUE(health) << httplib::to_string(health.error());
    EXPECT_EQ(health->status, 200);
  }
  for (int fd : stalled) close(fd);
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
