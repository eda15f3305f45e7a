#include "server/vs/priority_fifo.h"

#include "gtest/gtest.h"

namespace presence::vs {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(PriorityFifoTest, LeavesThenJoinsThenCreditsThenPingsEachInOrder) {
  PriorityFifo<int> q;
  q.Push(VsFunction::kPingRoom, 1, kT0);
  q.Push(VsFunction::kJoinRoom, 2, kT0);
  q.Push(VsFunction::kPingRoom, 3, kT0);
  q.Push(VsFunction::kUpdateCredits, 4, kT0);
  q.Push(VsFunction::kLeaveRoom, 5, kT0);
  q.Push(VsFunction::kJoinRoom, 6, kT0);
  q.Push(VsFunction::kLeaveRoom, 7, kT0);
  EXPECT_EQ(q.size(), 7u);
  std::vector<int> order;
  while (!q.empty()) order.push_back(q.Pop(kT0 + absl::Milliseconds(10)));
  EXPECT_EQ(order, (std::vector<int>{5, 7, 2, 6, 4, 1, 3}));
}

// A join flood cannot starve pings: a ping that waited a second goes before
// joins and credits, never before a leave.
TEST(PriorityFifoTest, APingThatWaitedASecondGoesBeforeJoins) {
  PriorityFifo<int> q(absl::Seconds(1));
  q.Push(VsFunction::kPingRoom, 1, kT0);
  q.Push(VsFunction::kJoinRoom, 2, kT0 + absl::Milliseconds(500));
  q.Push(VsFunction::kLeaveRoom, 3, kT0 + absl::Milliseconds(900));
  EXPECT_EQ(q.Pop(kT0 + absl::Milliseconds(999)), 3);
  EXPECT_EQ(q.Pop(kT0 + absl::Milliseconds(999)), 2);  // The ping is not overdue yet.
  q.Push(VsFunction::kJoinRoom, 4, kT0 + absl::Seconds(1));
  q.Push(VsFunction::kLeaveRoom, 5, kT0 + absl::Seconds(1));
  EXPECT_EQ(q.Pop(kT0 + absl::Seconds(1)), 5);
  EXPECT_EQ(q.Pop(kT0 + absl::Seconds(1)), 1);  // Overdue: before the join.
  EXPECT_EQ(q.Pop(kT0 + absl::Seconds(1)), 4);
  EXPECT_TRUE(q.empty());
}

TEST(PriorityFifoTest, TakeAllEmptiesMostUrgentFirst) {
  PriorityFifo<int> q;
  q.Push(VsFunction::kPingRoom, 1, kT0);
  q.Push(VsFunction::kLeaveRoom, 2, kT0);
  EXPECT_EQ(q.TakeAll(), (std::vector<int>{2, 1}));
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace presence::vs
