// A server interceptor that makes a request gRPC could not parse an
// INVALID_ARGUMENT naming the method, instead of the UNIMPLEMENTED with no
// message that gRPC's callback handlers answer it with (a client that sends
// garbage has made a bad request; the method is implemented).
#ifndef SEGQAT_SERVER_BAD_REQUEST_H_
#define SEGQAT_SERVER_BAD_REQUEST_H_

#include <grpcpp/support/server_interceptor.h>

namespace segqat::server {

class BadRequestInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_BAD_REQUEST_H_
