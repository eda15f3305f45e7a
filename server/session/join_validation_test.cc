#include "server/session/join_validation.h"

#include "gtest/gtest.h"

namespace presence::session {
namespace {

presence::v1::Join ValidJoin() {
  presence::v1::Join join;
  join.set_performer_id(42);
  join.set_nickname("bob");
  join.set_customer_id(7);
  join.set_ip_address("203.0.113.5");
  join.set_registered(true);
  join.set_credits(10);
  return join;
}

void ExpectInvalid(const presence::v1::Join& join, const std::string& field) {
  absl::Status status = ValidateJoin(join);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_NE(status.message().find(field), std::string::npos) << status;
}

TEST(JoinValidationTest, AcceptsAValidJoin) { EXPECT_TRUE(ValidateJoin(ValidJoin()).ok()); }

TEST(JoinValidationTest, AcceptsAGuestAndIpv6) {
  presence::v1::Join join = ValidJoin();
  join.clear_customer_id();
  join.set_registered(false);
  join.set_ip_address("2001:db8::1");
  EXPECT_TRUE(ValidateJoin(join).ok());
}

TEST(JoinValidationTest, PerformerIdMustBePositive) {
  presence::v1::Join join = ValidJoin();
  join.set_performer_id(0);
  ExpectInvalid(join, "join.performer_id");
  join.set_performer_id(-3);
  ExpectInvalid(join, "join.performer_id");
}

TEST(JoinValidationTest, NicknameLengthCountsCharactersNotBytes) {
  presence::v1::Join join = ValidJoin();
  join.set_nickname("");
  ExpectInvalid(join, "join.nickname");
  std::string zoe64;
  for (int i = 0; i < 64; ++i) zoe64 += "ë";
  join.set_nickname(zoe64);  // 64 characters, 128 bytes.
  EXPECT_TRUE(ValidateJoin(join).ok());
  join.set_nickname(zoe64 + "x");
  ExpectInvalid(join, "join.nickname");
}

TEST(JoinValidationTest, NicknameMustBeValidUtf8WithoutControls) {
  presence::v1::Join join = ValidJoin();
  join.set_nickname("bad\xff");
  ExpectInvalid(join, "UTF-8");
  join.set_nickname("\xc0\xaf");  // Overlong '/'.
  ExpectInvalid(join, "UTF-8");
  join.set_nickname("\xed\xa0\x80");  // A surrogate.
  ExpectInvalid(join, "UTF-8");
  join.set_nickname("\xe2\x82");  // Truncated.
  ExpectInvalid(join, "UTF-8");
  join.set_nickname("tab\there");
  ExpectInvalid(join, "control");
  join.set_nickname("c1\xc2\x85");
  ExpectInvalid(join, "control");
  join.set_nickname("Zoë & Co=1+1 🎉");
  EXPECT_TRUE(ValidateJoin(join).ok());
}

TEST(JoinValidationTest, IpAddressMustBeALiteral) {
  presence::v1::Join join = ValidJoin();
  for (const char* bad :
       {"", "example.com", "256.1.1.1", "1.2.3", "[::1]", "fe80::1%eth0", " 1.2.3.4"}) {
    join.set_ip_address(bad);
    ExpectInvalid(join, "join.ip_address");
  }
}

TEST(JoinValidationTest, CreditsMustNotBeNegative) {
  presence::v1::Join join = ValidJoin();
  join.set_credits(-1);
  ExpectInvalid(join, "join.credits");
}

TEST(JoinValidationTest, CustomerIdMustBePositiveWhenSet) {
  presence::v1::Join join = ValidJoin();
  join.set_customer_id(0);
  ExpectInvalid(join, "join.customer_id");
}

TEST(JoinValidationTest, RegisteredRequiresCustomerId) {
  presence::v1::Join join = ValidJoin();
  join.clear_customer_id();
  ExpectInvalid(join, "join.registered");
}

}  // namespace
}  // namespace presence::session
