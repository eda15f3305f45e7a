#include "server/vs/priority_fifo.h"

#include "gtest/gtest.h"

namespace presence::vs {
namespace {

TEST(PriorityFifoTest, LeavesThenJoinsThenCreditsThenPingsEachInOrder) {
  PriorityFifo<int> q;
  q.Push(VsFunction::kPingRoom, 1);
  q.Push(VsFunction::kJoinRoom, 2);
  q.Push(VsFunction::kPingRoom, 3);
  q.Push(VsFunction::kUpdateCredits, 4);
  q.Push(VsFunction::kLeaveRoom, 5);
  q.Push(VsFunction::kJoinRoom, 6);
  q.Push(VsFunction::kLeaveRoom, 7);
  EXPECT_EQ(q.size(), 7u);
  std::vector<int> order;
  while (!q.empty()) order.push_back(q.Pop());
  EXPECT_EQ(order, (std::vector<int>{5, 7, 2, 6, 4, 1, 3}));
}

TEST(PriorityFifoTest, TakeAllEmptiesMostUrgentFirst) {
  PriorityFifo<int> q;
  q.Push(VsFunction::kPingRoom, 1);
  q.Push(VsFunction::kLeaveRoom, 2);
  EXPECT_EQ(q.TakeAll(), (std::vector<int>{2, 1}));
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace presence::vs
