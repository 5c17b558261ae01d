// Bounded input (issue 18): files whose size someone else controls end in a clear error.
#include "util/bounded_read.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace chokepoint::util {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/chokepoint-bounded-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ReadFileBounded, ReadsASmallFile) {
  TempDir d;
  std::ofstream(d.path() + "/a.csv") << "1,2\n";
  auto r = read_file_bounded(d.path() + "/a.csv", 16, FileKind::kRegularOnly, "a CSV");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "1,2\n");
  auto exact = read_file_bounded(d.path() + "/a.csv", 4, FileKind::kRegularOnly, "a CSV");
  ASSERT_TRUE(exact);
}

TEST(ReadFileBounded, RefusesALargerFile) {
  TempDir d;
  std::ofstream(d.path() + "/big") << std::string(5000, 'x');
  auto r = read_file_bounded(d.path() + "/big", 4096, FileKind::kAnyReadable, "a CSV");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("larger than 4 KiB"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().hint, "give a CSV (at most 4 KiB)");
}

TEST(ReadFileBounded, DevZeroEndsAtTheCap) {
  const auto start = std::chrono::steady_clock::now();
  auto r = read_file_bounded("/dev/zero", 1 << 20, FileKind::kAnyReadable, "a CSV");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("more than 1 MiB"), std::string::npos) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  auto regular = read_file_bounded("/dev/zero", 1 << 20, FileKind::kRegularOnly, "a map");
  ASSERT_FALSE(regular);
  EXPECT_NE(regular.error().message.find("not a regular file"), std::string::npos);
}

TEST(ReadFileBounded, DirectoryAndMissingFile) {
  TempDir d;
  auto dir = read_file_bounded(d.path(), 100, FileKind::kAnyReadable, "a CSV");
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().message.find("is a directory"), std::string::npos) << dir.error().message;
  EXPECT_EQ(dir.error().hint, "give a CSV");
  auto missing = read_file_bounded(d.path() + "/nope", 100, FileKind::kAnyReadable, "a CSV");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);
}

TEST(ReadFileBounded, AFifoWithoutAWriterDoesNotBlockARegularOnlyRead) {
  TempDir d;
  const std::string fifo = d.path() + "/perf-1.map";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = read_file_bounded(fifo, 100, FileKind::kRegularOnly, "a perf map");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos);
}

TEST(SizeText, Units) {
  EXPECT_EQ(size_text(1 << 20), "1 MiB");
  EXPECT_EQ(size_text(std::size_t{256} << 20), "256 MiB");
  EXPECT_EQ(size_text(4096), "4 KiB");
  EXPECT_EQ(size_text(1000), "1000 bytes");
}

}  // namespace
}  // namespace chokepoint::util
