#include "server/event_tail.h"

#include <gtest/gtest.h>

namespace segqat::server {
namespace {

v1::JobEvent Event(int64_t seq) {
  v1::JobEvent e;
  e.set_seq(seq);
  return e;
}

std::vector<int64_t> Seqs(const std::vector<v1::JobEvent>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e.seq());
  return out;
}

TEST(EventTailTest, AnswersOnlyWhenItHoldsEveryLaterEvent) {
  EventTail tail(/*events_per_job=*/3, /*jobs=*/2);
  std::vector<v1::JobEvent> out;
  EXPECT_FALSE(tail.Read("a", 0, 10, &out));                 // nothing cached
  for (int64_t s = 1; s <= 5; ++s) tail.Add("a", Event(s));  // keeps 3, 4, 5
  EXPECT_FALSE(tail.Read("a", 1, 10, &out));                 // 2 is gone: ask the database
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(tail.Read("a", 2, 10, &out));
  EXPECT_EQ(Seqs(out), (std::vector<int64_t>{3, 4, 5}));
  out.clear();
  ASSERT_TRUE(tail.Read("a", 3, 1, &out));  // limit
  EXPECT_EQ(Seqs(out), std::vector<int64_t>{4});
  out.clear();
  ASSERT_TRUE(tail.Read("a", 5, 10, &out));  // caught up: nothing new, certainly
  EXPECT_TRUE(out.empty());
}

TEST(EventTailTest, EvictsTheLeastRecentJobAndRestartsAfterAGap) {
  EventTail tail(8, 2);
  std::vector<v1::JobEvent> out;
  tail.Add("a", Event(1));
  tail.Add("b", Event(1));
  tail.Add("c", Event(1));  // evicts a
  EXPECT_FALSE(tail.Read("a", 0, 10, &out));
  EXPECT_TRUE(tail.Read("b", 0, 10, &out));
  tail.Add("b", Event(7));  // a gap: only 7 is known now
  out.clear();
  EXPECT_FALSE(tail.Read("b", 1, 10, &out));
  ASSERT_TRUE(tail.Read("b", 6, 10, &out));
  EXPECT_EQ(Seqs(out), std::vector<int64_t>{7});
}

}  // namespace
}  // namespace segqat::server
