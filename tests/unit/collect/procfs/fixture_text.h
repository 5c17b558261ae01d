#pragma once
// Shared by the procfs parser tests: the text of a captured /proc file under
// tests/fixtures/proc/, and the units the fixtures were captured with.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "collect/procfs/text.h"

namespace chokepoint::collect::procfs::testing {

inline constexpr Units kFixtureUnits{100, 4096};

inline std::string fixture(const std::string& relative) {
  std::ifstream in(std::string(CHOKEPOINT_FIXTURES_DIR) + "/proc/" + relative, std::ios::binary);
  EXPECT_TRUE(in) << relative;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace chokepoint::collect::procfs::testing
