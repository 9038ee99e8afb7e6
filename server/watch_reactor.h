// WatchReactor: one WatchJob stream. Sends the stored events after
// after_seq, then each new one as the EventBus announces it, one write at a
// time; finishes once the job has ended and its last event is sent. A
// client that goes away ends the stream and nothing else.
#ifndef SEGQAT_SERVER_WATCH_REACTOR_H_
#define SEGQAT_SERVER_WATCH_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "segqat/v1/jobs.pb.h"
#include "server/event_bus.h"
#include "server/job_store.h"

namespace segqat::server {

class WatchReactor : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  // `record` is told the stream's final status.
  // `slot` (may be null) is held until the stream is done.
  WatchReactor(JobStore* store, EventBus* bus, const v1::WatchJobRequest& request,
               std::function<void(const grpc::Status&)> record,
               std::shared_ptr<void> slot = nullptr);
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // REQUIRES: mu_ held. Starts the next write, or finishes the stream.
  void Pump();
  void FinishOnce(const grpc::Status& status);

  // The bus may call back while OnDone runs on another thread; the callback
  // holds this shared guard and finds reactor null once the stream is done.
  struct Guard {
    std::mutex mu;
    WatchReactor* reactor;
  };

  std::shared_ptr<void> slot_;
  JobStore* store_;
  EventBus* bus_;
  std::function<void(const grpc::Status&)> record_;
  std::string job_id_;
  int token_ = 0;
  std::shared_ptr<Guard> guard_;
  std::mutex mu_;
  int64_t last_seq_;  // the last event queued for sending
  bool writing_ = false;
  bool saw_final_ = false;  // the job's final state event is queued or sent
  bool finished_ = false;
  std::deque<v1::JobEvent> pending_;
  v1::JobEvent current_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_WATCH_REACTOR_H_
