#pragma once
// The one fatal user-error type. Throw it from app/ code when the run cannot go on; only
// app::run catches it, prints "error: ..." and "hint: ..." to stderr, and exits with its code.

#include <stdexcept>
#include <string>

#include "util/result.h"

namespace chokepoint::util {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

class FatalError : public std::runtime_error {
 public:
  explicit FatalError(Error error, int exit_code = kExitRuntime)
      : std::runtime_error(error.message), error_(std::move(error)), exit_code_(exit_code) {}
  const Error& error() const { return error_; }
  int exit_code() const { return exit_code_; }

 private:
  Error error_;
  int exit_code_;
};

// Throws FatalError for a usage mistake (exit code 2).
[[noreturn]] void usage_error(std::string message, std::string hint);

// Prints "error: ..." and, when present, "hint: ..." to stderr, both through
// util::terminal_text (so an Error holds raw text: never escape it before).
void print_error(const Error& error);

}  // namespace chokepoint::util
