#include "server/transport_security.h"

#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace segqat::server {
namespace {

absl::StatusOr<std::string> ReadPem(const ParsedFlags& flags, const char* flag) {
  std::ifstream in(flags.Get(flag));
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", flags.Get(flag)));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

bool IsLoopback(const std::string& listen) {
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0 ||
         listen.rfind("unix:", 0) == 0;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ParsedFlags& flags) {
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

void WithoutReflection::UpdatePlugins(
    std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) {
  plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                  return p->name() == "proto_server_reflection";
                                }),
                 plugins->end());
}

}  // namespace segqat::server
