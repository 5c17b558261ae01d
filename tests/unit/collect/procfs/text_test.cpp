#include "collect/procfs/text.h"

#include <gtest/gtest.h>

#include <limits>

namespace chokepoint::collect::procfs {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(ParseU64, IsStrict) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("18446744073709551615"), kMax);
  EXPECT_FALSE(parse_u64("18446744073709551616"));  // overflow
  EXPECT_FALSE(parse_u64(""));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_FALSE(parse_u64("+1"));
  EXPECT_FALSE(parse_u64(" 1"));
  EXPECT_FALSE(parse_u64("1 "));
  EXPECT_FALSE(parse_u64("12kB"));
}

TEST(ParseI64, TakesASign) {
  EXPECT_EQ(parse_i64("-1"), -1);
  EXPECT_EQ(parse_i64("42"), 42);
  EXPECT_FALSE(parse_i64("9223372036854775808"));
  EXPECT_FALSE(parse_i64("-"));
}

TEST(ParseHex, AcceptsThePrefixOrNot) {
  EXPECT_EQ(parse_hex_u64("0x7ffc9db350f0"), 0x7ffc9db350f0u);
  EXPECT_EQ(parse_hex_u64("ff"), 0xffu);
  EXPECT_EQ(parse_hex_u64("0xffffffffffffffff"), kMax);
  EXPECT_FALSE(parse_hex_u64("0x"));
  EXPECT_FALSE(parse_hex_u64("0x1g"));
  EXPECT_FALSE(parse_hex_u64("0x10000000000000000"));
}

TEST(ParseDecimal, ReadsAveragesOnly) {
  EXPECT_DOUBLE_EQ(*parse_decimal("16.32"), 16.32);
  EXPECT_DOUBLE_EQ(*parse_decimal("0"), 0.0);
  EXPECT_FALSE(parse_decimal("1e5"));
  EXPECT_FALSE(parse_decimal("nan"));
  EXPECT_FALSE(parse_decimal("1.2.3"));
  EXPECT_FALSE(parse_decimal(""));
}

TEST(Split, WhitespaceAndLines) {
  auto tokens = split_ws("  a\tbb \n c  ");
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0], "a");
  EXPECT_EQ(tokens[1], "bb");
  EXPECT_EQ(tokens[2], "c");
  EXPECT_TRUE(split_ws("   ").empty());
  auto lines = split_lines("x\n\ny\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "");
  EXPECT_EQ(lines[2], "y");
  EXPECT_EQ(trim("\t x y \n"), "x y");
}

TEST(Text, StripDeletedSuffix) {
  std::string_view path = "/usr/sbin/nginx (deleted)";
  EXPECT_TRUE(strip_deleted_suffix(path));
  EXPECT_EQ(path, "/usr/sbin/nginx");
  EXPECT_FALSE(strip_deleted_suffix(path));
  EXPECT_EQ(path, "/usr/sbin/nginx");
  std::string_view only = " (deleted)";
  EXPECT_FALSE(strip_deleted_suffix(only));
  EXPECT_EQ(only, " (deleted)");
  std::string_view inside = "/tmp/a (deleted)/b";
  EXPECT_FALSE(strip_deleted_suffix(inside));
}

TEST(Units, ConvertAndSaturate) {
  EXPECT_EQ(ticks_to_ns(250, 100), 2'500'000'000u);
  EXPECT_EQ(ticks_to_ns(3, 1024), 2'929'687u);  // a USER_HZ that does not divide 1e9
  EXPECT_EQ(ticks_to_ns(kMax, 100), kMax);
  EXPECT_EQ(ticks_to_ns(5, 0), 0u);
  EXPECT_EQ(pages_to_bytes(3, 4096), 12288u);
  EXPECT_EQ(pages_to_bytes(kMax / 2, 4096), kMax);
  EXPECT_EQ(kib_to_bytes(2), 2048u);
  EXPECT_EQ(kib_to_bytes(kMax / 1000), kMax);
}

TEST(Units, HostValuesAreSane) {
  const Units units = Units::host();
  EXPECT_GT(units.ticks_per_sec, 0);
  EXPECT_GE(units.page_size_bytes, 4096u);
}

}  // namespace
}  // namespace chokepoint::collect::procfs
