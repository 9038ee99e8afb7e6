// How segqat's clients reach segqatd: the CLI, `segqat-worker serve` and
// segqatd's embedded workers. A token goes as `authorization: Bearer TOKEN`
// metadata on every call (a client interceptor, so no call site can forget
// it); TLS and mutual TLS use gRPC's own credentials.
#ifndef SEGQAT_COMMON_CHANNEL_H_
#define SEGQAT_COMMON_CHANNEL_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace segqat::client {

struct ChannelOptions {
  std::string token;              // empty: none sent
  std::string tls_ca;             // PEM file: use TLS, trusting this CA; empty: plaintext
  std::string tls_cert, tls_key;  // PEM files: this client's certificate (mutual TLS)
  int max_receive_bytes = 8 << 20;
};

// The token from --token-file FILE when given, else $SEGQAT_TOKEN, else "".
// NotFound naming the file when it cannot be read.
absl::StatusOr<std::string> ReadToken(const std::string& token_file);

// A channel to `target` (HOST:PORT). InvalidArgument naming the flag when a
// PEM file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const std::string& target,
                                                       const ChannelOptions& options);

// Interceptors that add the token to every call (none for an empty token),
// for channels made elsewhere (segqatd's in-process channel).
std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
TokenInterceptors(const std::string& token);

}  // namespace segqat::client

#endif  // SEGQAT_COMMON_CHANNEL_H_
