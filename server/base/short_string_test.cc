#include "server/base/short_string.h"

#include "gtest/gtest.h"

namespace presence::base {
namespace {

TEST(ShortStringTest, KeepsASessionIdInline) {
  // The point of the type: no larger than a std::string's inline part.
  static_assert(sizeof(ShortString) <= 24);
  ShortString id("0123456789abcdef");
  EXPECT_EQ(id.str(), "0123456789abcdef");
  EXPECT_EQ(id.view().size(), 16u);
}

TEST(ShortStringTest, KeepsLongerAndEmptyStringsWhole) {
  const std::string long_text(100, 'x');
  EXPECT_EQ(ShortString(long_text).str(), long_text);
  EXPECT_EQ(ShortString().str(), "");
  EXPECT_EQ(ShortString("").view(), "");
}

TEST(ShortStringTest, ComparesByContent) {
  EXPECT_EQ(ShortString("abc"), ShortString(std::string("abc")));
  EXPECT_FALSE(ShortString("abc") == ShortString("abd"));
  EXPECT_TRUE(ShortString("abc") < ShortString("abd"));
  EXPECT_FALSE(ShortString("abd") < ShortString("abc"));
}

}  // namespace
}  // namespace presence::base
