#include "server/bad_request.h"

#include <string>

namespace segqat::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class BadRequestInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit BadRequestInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    // The one request of a unary or server-streaming call arrives already
    // parsed; a null message here means it could not be.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsable_ = true;
    }
    if (unparsable_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        methods->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      methods->ModifySendStatus(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "the request could not be parsed as the message " + method_ + " takes"));
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  bool unparsable_ = false;
};

}  // namespace

grpc::experimental::Interceptor* BadRequestInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  if (info->type() != Type::UNARY && info->type() != Type::SERVER_STREAMING) return nullptr;
  return new BadRequestInterceptor(info->method() ? info->method() : "");
}

}  // namespace segqat::server
