// Round-trips every message of the presence.v1 contract through the wire
// format, so a change to a field number or type is caught here first.

#include <string>

#include "gtest/gtest.h"
#include "presence/v1/presence.grpc.pb.h"
#include "presence/v1/presence.pb.h"

namespace presence::v1 {
namespace {

template <typename T>
T RoundTrip(const T& in) {
  std::string wire;
  EXPECT_TRUE(in.SerializeToString(&wire));
  T out;
  EXPECT_TRUE(out.ParseFromString(wire));
  return out;
}

TEST(ContractTest, JoinRoundTripsEveryField) {
  SessionRequest req;
  Join* join = req.mutable_join();
  join->set_performer_id(42);
  join->set_nickname("Zoë & Co=1+1");
  join->set_customer_id(7);
  join->set_ip_address("2001:db8::1");
  join->set_registered(true);
  join->set_credits(1500);

  SessionRequest out = RoundTrip(req);
  ASSERT_EQ(out.event_case(), SessionRequest::kJoin);
  EXPECT_EQ(out.join().performer_id(), 42);
  EXPECT_EQ(out.join().nickname(), "Zoë & Co=1+1");
  ASSERT_TRUE(out.join().has_customer_id());
  EXPECT_EQ(out.join().customer_id(), 7);
  EXPECT_EQ(out.join().ip_address(), "2001:db8::1");
  EXPECT_TRUE(out.join().registered());
  EXPECT_EQ(out.join().credits(), 1500);
}

TEST(ContractTest, UnsetCustomerIdStaysUnset) {
  SessionRequest req;
  req.mutable_join()->set_performer_id(1);
  SessionRequest out = RoundTrip(req);
  EXPECT_FALSE(out.join().has_customer_id());

  Viewer viewer;
  viewer.set_nickname("guest_0001");
  EXPECT_FALSE(RoundTrip(viewer).has_customer_id());
}

TEST(ContractTest, ZeroCustomerIdIsDistinctFromUnset) {
  SessionRequest req;
  req.mutable_join()->set_customer_id(0);
  SessionRequest out = RoundTrip(req);
  ASSERT_TRUE(out.join().has_customer_id());
  EXPECT_EQ(out.join().customer_id(), 0);
}

TEST(ContractTest, OtherRequestEventsRoundTrip) {
  SessionRequest activity;
  activity.mutable_activity()->set_kind(ACTIVITY_KIND_SHOW);
  EXPECT_EQ(RoundTrip(activity).activity().kind(), ACTIVITY_KIND_SHOW);

  SessionRequest credits;
  credits.mutable_credits()->set_credits(99);
  EXPECT_EQ(RoundTrip(credits).credits().credits(), 99);

  SessionRequest leave;
  leave.mutable_leave();
  EXPECT_EQ(RoundTrip(leave).event_case(), SessionRequest::kLeave);

  EXPECT_EQ(RoundTrip(SessionRequest()).event_case(), SessionRequest::EVENT_NOT_SET);
}

TEST(ContractTest, ResponseEventsRoundTrip) {
  SessionResponse joined;
  joined.mutable_joined()->set_nickname("bob_1234");
  joined.mutable_joined()->set_session_id("abc");
  SessionResponse j = RoundTrip(joined);
  EXPECT_EQ(j.joined().nickname(), "bob_1234");
  EXPECT_EQ(j.joined().session_id(), "abc");

  SessionResponse credits;
  credits.mutable_credits_updated()->set_success(false);
  credits.mutable_credits_updated()->set_message("not registered");
  SessionResponse c = RoundTrip(credits);
  EXPECT_FALSE(c.credits_updated().success());
  EXPECT_EQ(c.credits_updated().message(), "not registered");

  SessionResponse notice;
  notice.mutable_notice()->set_kind(NOTICE_KIND_UPSTREAM_UNAVAILABLE);
  notice.mutable_notice()->set_message("VS down");
  SessionResponse n = RoundTrip(notice);
  EXPECT_EQ(n.notice().kind(), NOTICE_KIND_UPSTREAM_UNAVAILABLE);
  EXPECT_EQ(n.notice().message(), "VS down");

  SessionResponse left;
  left.mutable_left();
  EXPECT_EQ(RoundTrip(left).event_case(), SessionResponse::kLeft);
}

TEST(ContractTest, UnaryMessagesRoundTrip) {
  UpdateCreditsRequest credits;
  credits.set_customer_id(5);
  credits.set_credits(10);
  UpdateCreditsRequest c = RoundTrip(credits);
  EXPECT_EQ(c.customer_id(), 5);
  EXPECT_EQ(c.credits(), 10);
  EXPECT_EQ(RoundTrip(UpdateCreditsResponse()).ByteSizeLong(), 0u);

  GetRoomRequest room;
  room.set_performer_id(3);
  EXPECT_EQ(RoundTrip(room).performer_id(), 3);

  GetRoomResponse resp;
  Viewer* v = resp.add_viewers();
  v->set_nickname("bob_1234");
  v->set_customer_id(9);
  v->set_registered(true);
  v->mutable_joined_at()->set_seconds(1700000000);
  v->mutable_joined_at()->set_nanos(5);
  GetRoomResponse r = RoundTrip(resp);
  ASSERT_EQ(r.viewers_size(), 1);
  EXPECT_EQ(r.viewers(0).nickname(), "bob_1234");
  EXPECT_EQ(r.viewers(0).customer_id(), 9);
  EXPECT_TRUE(r.viewers(0).registered());
  EXPECT_EQ(r.viewers(0).joined_at().seconds(), 1700000000);
  EXPECT_EQ(r.viewers(0).joined_at().nanos(), 5);
}

TEST(ContractTest, FieldNumbersMatchTheContract) {
  const auto* join = Join::descriptor();
  EXPECT_EQ(join->FindFieldByName("performer_id")->number(), 1);
  EXPECT_EQ(join->FindFieldByName("nickname")->number(), 2);
  EXPECT_EQ(join->FindFieldByName("customer_id")->number(), 3);
  EXPECT_EQ(join->FindFieldByName("ip_address")->number(), 4);
  EXPECT_EQ(join->FindFieldByName("registered")->number(), 5);
  EXPECT_EQ(join->FindFieldByName("credits")->number(), 6);
  const auto* req = SessionRequest::descriptor();
  EXPECT_EQ(req->FindFieldByName("join")->number(), 1);
  EXPECT_EQ(req->FindFieldByName("activity")->number(), 2);
  EXPECT_EQ(req->FindFieldByName("credits")->number(), 3);
  EXPECT_EQ(req->FindFieldByName("leave")->number(), 4);
  const auto* resp = SessionResponse::descriptor();
  EXPECT_EQ(resp->FindFieldByName("joined")->number(), 1);
  EXPECT_EQ(resp->FindFieldByName("credits_updated")->number(), 2);
  EXPECT_EQ(resp->FindFieldByName("notice")->number(), 3);
  EXPECT_EQ(resp->FindFieldByName("left")->number(), 4);
  const auto* service = Presence::service_full_name();
  EXPECT_STREQ(service, "presence.v1.Presence");
}

}  // namespace
}  // namespace presence::v1
