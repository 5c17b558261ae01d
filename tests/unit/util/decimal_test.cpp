// Decimal numbers only (issue 18): what strtod takes beyond them is refused.
#include "util/decimal.h"

#include <gtest/gtest.h>

namespace chokepoint::util {
namespace {

TEST(ParseDecimal, TakesDecimalNumbersOnly) {
  EXPECT_EQ(parse_decimal("12"), 12.0);
  EXPECT_EQ(parse_decimal(" -1.5e2 "), -150.0);
  EXPECT_EQ(parse_decimal("+.5"), 0.5);
  EXPECT_EQ(parse_decimal("3."), 3.0);
  for (const char* bad : {"", " ", "0x10", "inf", "nan", "1e", "1e5x", "1 2", "--1", ".", "+",
                          "1e999", "0x1p3", "١٢"}) {
    EXPECT_FALSE(parse_decimal(bad)) << bad;
  }
}

TEST(DecimalPrefix, StopsBeforeAUnit) {
  auto ms = decimal_prefix("250ms");
  EXPECT_EQ(ms.value, 250.0);
  EXPECT_EQ(ms.length, 3u);
  auto e = decimal_prefix("2em");  // "e" without digits is not an exponent
  EXPECT_EQ(e.length, 1u);
  auto exp = decimal_prefix("1e3s");
  EXPECT_EQ(exp.value, 1000.0);
  EXPECT_EQ(exp.length, 3u);
  EXPECT_EQ(decimal_prefix("0x10s").length, 1u);  // "0", then the unit "x10s" is refused
  EXPECT_EQ(decimal_prefix("h").length, 0u);
}

}  // namespace
}  // namespace chokepoint::util
