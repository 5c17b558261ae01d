#pragma once
// Running this build's chokepoint binary from a test, and checking the error contract every
// subcommand keeps: a clear "error:" and "hint:" on stderr and the documented exit code.
// Header-only: CHOKEPOINT_BIN_DIR is defined per test target by chokepoint_add_test().

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/lab_process.h"

namespace chokepoint::test_support {

#ifdef CHOKEPOINT_BIN_DIR
inline std::string chokepoint_bin() {
  return std::string(CHOKEPOINT_BIN_DIR) + "/chokepoint";
}

// Runs `chokepoint args...` to completion (killed after timeout_s); a failure to run is a test
// failure and an empty result.
inline ExitResult run_chokepoint(const std::vector<std::string>& args, int timeout_s = 30) {
  auto r = run_to_exit(args, chokepoint_bin(), std::chrono::seconds(timeout_s));
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : ExitResult{};
}
#endif

inline void expect_cli_error(const ExitResult& r, int code, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, code) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("error: "), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("hint: "), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find(fragment), std::string::npos) << r.stderr_text;
}

}  // namespace chokepoint::test_support
