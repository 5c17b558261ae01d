// util/shared_library.h: a library opened when first needed, and what a missing one says.
#include "util/shared_library.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace chokepoint::util {
namespace {

TEST(SharedLibrary, BindsAFunctionThatWorks) {
  // libc's soname on glibc systems; already loaded, so this opens it again by name.
  auto lib = SharedLibrary::open("libc.so.6", "this test", "");
  ASSERT_TRUE(lib) << lib.error().message;
  std::size_t (*length)(const char*) = nullptr;
  ASSERT_TRUE(lib->bind(length, "strlen"));
  ASSERT_NE(length, nullptr);
  EXPECT_EQ(length("chokepoint"), 10u);
}

TEST(SharedLibrary, AMissingLibraryNamesItWhoNeedsItAndTheHint) {
  auto lib =
      SharedLibrary::open("libchokepoint-absent.so.9", "the Example probe", "install libexample9");
  ASSERT_FALSE(lib);
  EXPECT_NE(lib.error().message.find("the Example probe needs libchokepoint-absent.so.9"),
            std::string::npos)
      << lib.error().message;
  // dlerror's reason follows.
  EXPECT_NE(lib.error().message.find("cannot open shared object file"), std::string::npos)
      << lib.error().message;
  EXPECT_EQ(lib.error().hint, "install libexample9");
}

TEST(SharedLibrary, AMissingFunctionNamesItAndKeepsTheHint) {
  auto lib = SharedLibrary::open("libc.so.6", "this test", "install a newer libc");
  ASSERT_TRUE(lib) << lib.error().message;
  void (*absent)() = nullptr;
  auto bound = lib->bind(absent, "chokepoint_no_such_function");
  ASSERT_FALSE(bound);
  EXPECT_NE(bound.error().message.find("libc.so.6 has no function chokepoint_no_such_function"),
            std::string::npos)
      << bound.error().message;
  EXPECT_EQ(bound.error().hint, "install a newer libc");
  EXPECT_EQ(absent, nullptr);
}

}  // namespace
}  // namespace chokepoint::util

namespace chokepoint::util {
namespace {

struct StrApi {
  std::size_t (*length)(const char*) = nullptr;
  void (*absent)() = nullptr;
};

TEST(SharedLibrary, LoadFillsTheTableOrGivesTheFirstFailure) {
  auto ok =
      SharedLibrary::load<StrApi>("libc.so.6", "this test", "", [](const auto& lib, StrApi& a) {
        return std::vector<Result<void>>{lib.bind(a.length, "strlen")};
      });
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->length("abc"), 3u);
  auto missing = SharedLibrary::load<StrApi>(
      "libc.so.6", "this test", "a hint", [](const auto& lib, StrApi& a) {
        return std::vector<Result<void>>{lib.bind(a.length, "strlen"),
                                         lib.bind(a.absent, "chokepoint_no_such_function")};
      });
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("chokepoint_no_such_function"), std::string::npos);
  EXPECT_EQ(missing.error().hint, "a hint");
  EXPECT_FALSE(SharedLibrary::load<StrApi>(
      "libchokepoint-absent.so.9", "this test", "",
      [](const auto&, StrApi&) { return std::vector<Result<void>>{}; }));
}

}  // namespace
}  // namespace chokepoint::util
