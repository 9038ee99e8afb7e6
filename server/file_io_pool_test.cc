// The I/O pool the streaming RPCs hand their file work to: work runs on the
// pool's threads, never the poster's, a blocked task leaves the others
// running, and everything posted runs before the pool is gone.
#include "server/file_io_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace segqat::server {
namespace {

TEST(FileIoPoolTest, WorkRunsOnThePoolsThreads) {
  FileIoPool pool(2);
  EXPECT_FALSE(pool.OnPoolThread());
  std::promise<std::pair<bool, std::thread::id>> ran;
  pool.Post([&] { ran.set_value({pool.OnPoolThread(), std::this_thread::get_id()}); });
  auto [on_pool, id] = ran.get_future().get();
  EXPECT_TRUE(on_pool);
  EXPECT_NE(id, std::this_thread::get_id());
}

TEST(FileIoPoolTest, OneBlockedTaskLeavesTheOthersRunning) {
  FileIoPool pool(2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  pool.Post([released] { released.wait(); });  // a stuck fsync
  std::atomic<int> others{0};
  std::promise<void> all_done;
  for (int i = 0; i < 10; ++i) {
    pool.Post([&] {
      if (++others == 10) all_done.set_value();
    });
  }
  EXPECT_EQ(all_done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(others.load(), 10);
  release.set_value();
}

TEST(FileIoPoolTest, EverythingPostedRunsBeforeThePoolIsGone) {
  std::atomic<int> ran{0};
  {
    FileIoPool pool(1);
    for (int i = 0; i < 100; ++i) {
      pool.Post([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        ++ran;
      });
    }
  }
  EXPECT_EQ(ran.load(), 100);
}

}  // namespace
}  // namespace segqat::server
