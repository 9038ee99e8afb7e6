// The threads that do segqatd's blocking file work for its streaming RPCs:
// an upload's writes, fsync and commit, a download's reads, the first
// sha256 check of a stored artifact. gRPC's callback threads only hand the
// work over and return, so a slow disk delays those streams, never the
// other RPCs (Synchronize, GetJob, WatchJob) that share the threads.
#ifndef SEGQAT_SERVER_FILE_IO_POOL_H_
#define SEGQAT_SERVER_FILE_IO_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace segqat::server {

class FileIoPool {
 public:
  explicit FileIoPool(int threads);
  // Runs what was posted, then joins.
  ~FileIoPool();
  FileIoPool(const FileIoPool&) = delete;
  FileIoPool& operator=(const FileIoPool&) = delete;

  // Runs `work` on one of the pool's threads, in posting order per thread.
  void Post(std::function<void()> work);
  // Whether the calling thread is one of the pool's.
  bool OnPoolThread() const;
  // Work items run so far.
  int64_t done() const;

 private:
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  int64_t done_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_FILE_IO_POOL_H_
