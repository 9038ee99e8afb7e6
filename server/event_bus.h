// EventBus: wakes whoever watches a job when its events change. Carries no
// data; watchers read the events from the JobStore. Thread-safe; callbacks
// run on the notifying thread, outside the bus's lock, and must not block.
#ifndef SEGQAT_SERVER_EVENT_BUS_H_
#define SEGQAT_SERVER_EVENT_BUS_H_

#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace segqat::server {

class EventBus {
 public:
  using Callback = std::function<void()>;
  // Returns a token for Unsubscribe.
  int Subscribe(const std::string& job_id, Callback callback);
  void Unsubscribe(const std::string& job_id, int token);
  void Notify(const std::string& job_id);

 private:
  std::mutex mu_;
  int next_token_ = 1;
  std::map<std::string, std::map<int, Callback>> subscribers_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_EVENT_BUS_H_
