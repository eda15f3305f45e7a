#include "server/session/session_registry.h"

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace presence::session {
namespace {

std::shared_ptr<SessionCore> Joined(const std::string& id, int64_t performer, int64_t at_seconds) {
  auto core = std::make_shared<SessionCore>(id, nullptr);
  SessionIdentity who;
  who.performer_id = performer;
  who.display_nickname = id;
  who.joined_at = absl::FromUnixSeconds(at_seconds);
  core->set_identity(std::move(who));
  return core;
}

TEST(SessionRegistryTest, RefusesStreamsPastTheLimitAndFreesSlotsOnClose) {
  SessionRegistry registry(2);
  EXPECT_TRUE(registry.TryOpen());
  EXPECT_TRUE(registry.TryOpen());
  EXPECT_FALSE(registry.TryOpen());
  EXPECT_EQ(registry.open(), 2);
  registry.Close();
  EXPECT_TRUE(registry.TryOpen());
}

TEST(SessionRegistryTest, ListsARoomOldestJoinFirst) {
  SessionRegistry registry(10);
  registry.AddJoined(Joined("b", 7, 20));
  registry.AddJoined(Joined("a", 7, 10));
  registry.AddJoined(Joined("other-room", 8, 5));
  auto room = registry.Room(7);
  ASSERT_EQ(room.size(), 2u);
  EXPECT_EQ(room[0]->id(), "a");
  EXPECT_EQ(room[1]->id(), "b");
  EXPECT_EQ(registry.joined(), 3);
  EXPECT_TRUE(registry.Room(9).empty());
}

TEST(SessionRegistryTest, RemoveIsExactAndIdempotent) {
  SessionRegistry registry(10);
  auto a = Joined("a", 7, 1);
  auto b = Joined("b", 7, 2);
  registry.AddJoined(a);
  registry.AddJoined(b);
  registry.AddJoined(a);  // Twice: counted once.
  EXPECT_EQ(registry.joined(), 2);
  registry.RemoveJoined(*a);
  registry.RemoveJoined(*a);
  EXPECT_EQ(registry.joined(), 1);
  ASSERT_EQ(registry.Room(7).size(), 1u);
  EXPECT_EQ(registry.Room(7)[0]->id(), "b");
  EXPECT_EQ(registry.AllJoined().size(), 1u);
}

}  // namespace
}  // namespace presence::session
