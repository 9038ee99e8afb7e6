// How segqatd's gRPC port is secured: whether an address is loopback-only
// (segqatd refuses anything wider without tokens), the server credentials
// from --tls-cert, --tls-key and --tls-client-ca, and keeping gRPC server
// reflection off when tokens are on.
#ifndef SEGQAT_SERVER_TRANSPORT_SECURITY_H_
#define SEGQAT_SERVER_TRANSPORT_SECURITY_H_

#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "job/flags.h"

namespace segqat::server {

// "127.x.x.x:P", "localhost:P", "[::1]:P" or a unix: socket.
bool IsLoopback(const std::string& listen);

// Plaintext, TLS (--tls-cert, --tls-key) or TLS that asks clients for a
// certificate and verifies the ones presented (--tls-client-ca).
// InvalidArgument naming the flag whose file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ParsedFlags& flags);

// Takes gRPC server reflection out of a builder: linking the reflection
// library registers it for every server, and with tokens it would list the
// API to callers that may call none of it.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_TRANSPORT_SECURITY_H_
