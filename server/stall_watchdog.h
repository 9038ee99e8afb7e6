// Ends server streams whose client stopped reading: a stream reports when a
// write starts and when it completes, and one whose write has waited longer
// than the timeout (the client's flow-control window full, nobody reading)
// is cancelled, so it gives its slot back (StreamSlots) instead of holding
// it until the client goes away. Thread-safe; one thread checks every
// quarter of the timeout (at most every second).
#ifndef SEGQAT_SERVER_STALL_WATCHDOG_H_
#define SEGQAT_SERVER_STALL_WATCHDOG_H_

#include <grpcpp/server_context.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace segqat::server {

class StallWatchdog {
 public:
  // timeout <= 0: never cancels (the calls below cost a map update). `what`
  // names the streams in the log ("ReadArtifact").
  StallWatchdog(std::chrono::milliseconds timeout, std::string what);
  ~StallWatchdog();
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  // ctx must stay valid until Unregister (call it from the reactor's OnDone).
  int64_t Register(grpc::CallbackServerContext* ctx);
  void WriteStarted(int64_t id);
  void WriteDone(int64_t id);
  void Unregister(int64_t id);

  // Streams cancelled so far.
  int64_t cancelled() const;

 private:
  struct Entry {
    grpc::CallbackServerContext* ctx = nullptr;
    bool writing = false, cancelled = false;
    std::chrono::steady_clock::time_point since;
  };
  void Loop();

  const std::chrono::milliseconds timeout_;
  const std::string what_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  int64_t next_id_ = 0, cancelled_ = 0;
  std::map<int64_t, Entry> entries_;
  std::thread thread_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_STALL_WATCHDOG_H_
