#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace gangway::common {
namespace {

TEST(Utf8Test, FindsTheFirstInvalidByte) {
  EXPECT_EQ(InvalidUtf8Offset(""), std::string::npos);
  EXPECT_EQ(InvalidUtf8Offset("caf\xc3\xa9 \xf0\x9f\x9a\x80"), std::string::npos);
  EXPECT_EQ(InvalidUtf8Offset("loss=\xff"), 5u);
  EXPECT_EQ(InvalidUtf8Offset("ab\xc3"), 2u);            // cut short
  EXPECT_EQ(InvalidUtf8Offset("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(InvalidUtf8Offset("x\xed\xa0\x80"), 1u);     // a surrogate
  EXPECT_EQ(InvalidUtf8Offset("\xf4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(InvalidUtf8Offset("\xe2\x82"), 0u);
}

TEST(Utf8Test, RepairsWithReplacementCharacters) {
  EXPECT_EQ(ToValidUtf8("loss=\xff"), "loss=\xEF\xBF\xBD");
  EXPECT_EQ(ToValidUtf8("\xc0\xaf!"), "\xEF\xBF\xBD\xEF\xBF\xBD!");
  EXPECT_EQ(ToValidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8(std::string("\x80\xbf\xfe\xff\xc3", 5))));
}

TEST(Utf8Test, CutsWithoutSplittingACharacter) {
  EXPECT_EQ(ToValidUtf8("abc\xc3\xa9", 4), "abc");
  EXPECT_EQ(ToValidUtf8("abc\xc3\xa9", 5), "abc\xc3\xa9");
  EXPECT_EQ(ToValidUtf8("ab\xff", 4), "ab");  // U+FFFD takes 3 bytes
  EXPECT_EQ(ToValidUtf8(std::string(1000, 'a'), 256).size(), 256u);
}

}  // namespace
}  // namespace gangway::common
