#pragma once
// What the OS-limit tests (limits_test.cpp, os_limits_test.cpp) share: a diagnosis of a pid as
// JSON, and the findings about one resource that mention a text.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/cli.h"

namespace chokepoint::test_support {

// `chokepoint diagnose --pid PID --duration DURATION --json --no-stacks`; a failure to run or a
// bad exit is a test failure and an empty document.
inline nlohmann::json diagnose_json(pid_t pid, const std::string& duration) {
  auto r = run_to_exit(
      {"diagnose", "--pid", std::to_string(pid), "--duration", duration, "--json", "--no-stacks"},
      chokepoint_bin(), std::chrono::seconds(30));
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return nlohmann::json();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  auto j = nlohmann::json::parse(r->stdout_text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r->stdout_text;
  return j.is_discarded() ? nlohmann::json() : j;
}

// "message | hint: hint" of each finding about `resource` whose message or hint holds `text`.
inline std::vector<std::string> findings_about(const nlohmann::json& j, const std::string& resource,
                                               const std::string& text) {
  std::vector<std::string> out;
  if (!j.contains("findings")) return out;
  for (const auto& f : j["findings"]) {
    if (f["resource"] != resource) continue;
    const std::string m =
        f["message"].get<std::string>() + " | hint: " + f["hint"].get<std::string>();
    if (m.find(text) != std::string::npos) out.push_back(m);
  }
  return out;
}

}  // namespace chokepoint::test_support
