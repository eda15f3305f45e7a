#include "server/vs/form.h"

#include "gtest/gtest.h"

namespace presence::vs {
namespace {

TEST(FormTest, EscapesEverythingButUnreservedBytes) {
  EXPECT_EQ(FormEscape("Zoë & Co=1+1"), "Zo%C3%AB+%26+Co%3D1%2B1");
  EXPECT_EQ(FormEscape("a-b.c_d~e"), "a-b.c_d~e");
  EXPECT_EQ(FormEscape(std::string("\0\n%", 3)), "%00%0A%25");
}

TEST(FormTest, EncodesFieldsInOrder) {
  EXPECT_EQ(FormEncode({{"function", "pingRoom"}, {"performerId", "7"}, {"nickname", "a&b=c"}}),
            "function=pingRoom&performerId=7&nickname=a%26b%3Dc");
}

TEST(FormTest, HostileValueCannotInjectAField) {
  std::string body = FormEncode({{"nickname", "x&customerId=1&key=evil"}, {"credits", "5"}});
  absl::StatusOr<FormFields> fields = FormDecode(body);
  ASSERT_TRUE(fields.ok());
  ASSERT_EQ(fields->size(), 2u);
  EXPECT_EQ((*fields)[0].second, "x&customerId=1&key=evil");
  EXPECT_EQ((*fields)[1], (std::pair<std::string, std::string>("credits", "5")));
}

TEST(FormTest, RoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  absl::StatusOr<FormFields> fields = FormDecode(FormEncode({{"v", all}}));
  ASSERT_TRUE(fields.ok());
  EXPECT_EQ((*fields)[0].second, all);
}

TEST(FormTest, DecodeRejectsMalformedEscapes) {
  EXPECT_EQ(FormDecode("a=%G1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FormDecode("a=%4").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FormDecode("a=%").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FormTest, DecodeKeepsEmptyValuesAndSkipsEmptyPairs) {
  absl::StatusOr<FormFields> fields = FormDecode("a=&&b&c=1");
  ASSERT_TRUE(fields.ok());
  ASSERT_EQ(fields->size(), 3u);
  EXPECT_EQ((*fields)[0], (std::pair<std::string, std::string>("a", "")));
  EXPECT_EQ((*fields)[1], (std::pair<std::string, std::string>("b", "")));
  EXPECT_EQ((*fields)[2], (std::pair<std::string, std::string>("c", "1")));
}

}  // namespace
}  // namespace presence::vs
