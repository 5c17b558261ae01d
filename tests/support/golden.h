#pragma once
// Golden-file comparison for tests that pin an output byte for byte. Header-only.
//
// With CHOKEPOINT_UPDATE_GOLDEN set in the environment the golden file is rewritten from `actual`
// and the test skips (review the diff before committing); otherwise `actual` must equal it.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace chokepoint::test_support {

inline void expect_matches_golden(const std::string& golden_path, const std::string& actual) {
  if (std::getenv("CHOKEPOINT_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path, std::ios::binary) << actual;
    GTEST_SKIP() << "rewrote " << golden_path;
  }
  std::ifstream in(golden_path, std::ios::binary);
  ASSERT_TRUE(in) << "no " << golden_path << "; run with CHOKEPOINT_UPDATE_GOLDEN=1";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), actual) << "differs from " << golden_path;
}

}  // namespace chokepoint::test_support
