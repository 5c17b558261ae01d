#include "util/result.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>

#include "util/fatal.h"
#include "util/scoped_fd.h"

#include <fcntl.h>

namespace chokepoint::util {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Error{"not positive", "pass a number above 0"};
  return v;
}

TEST(Result, HoldsValueOrError) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "not positive");
  EXPECT_EQ(bad.error().hint, "pass a number above 0");
}

TEST(Result, MovesOwningValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(Result, VoidResult) {
  Result<void> ok;
  EXPECT_TRUE(ok);
  Result<void> bad(Error{"nope", ""});
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "nope");
}

TEST(Error, ErrnoErrorNamesTheCause) {
  Error e = errno_error("open /nonexistent", ENOENT, "check the path");
  EXPECT_EQ(e.message, "open /nonexistent: No such file or directory");
  EXPECT_EQ(e.errno_value, ENOENT);
}

TEST(FatalError, UsageErrorHasExitCode2) {
  try {
    usage_error("bad flag", "see --help");
    FAIL() << "usage_error returned";
  } catch (const FatalError& e) {
    EXPECT_EQ(e.exit_code(), kExitUsage);
    EXPECT_EQ(e.error().hint, "see --help");
  }
}

TEST(ScopedFd, ClosesOnDestructionAndMoves) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ::close(fds[1]);
  {
    ScopedFd a(fds[0]);
    ScopedFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), fds[0]);
  }
  EXPECT_EQ(fcntl(fds[0], F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

}  // namespace
}  // namespace chokepoint::util
