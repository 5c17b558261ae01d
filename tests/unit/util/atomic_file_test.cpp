// write_file_atomically: the file appears whole, replaces an old one, leaves no temporary behind,
// and failures say what to do.
#include "util/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace chokepoint::util {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/chokepoint-output-file.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  int files() const {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(path)) {
      (void)e;
      ++n;
    }
    return n;
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(WriteFileAtomically, WritesAndReplaces) {
  TempDir d;
  const std::string f = d.path + "/out.folded";
  ASSERT_TRUE(write_file_atomically(f, "a;b 1\n"));
  EXPECT_EQ(read_file(f), "a;b 1\n");
  std::string big(3 << 20, 'x');
  ASSERT_TRUE(write_file_atomically(f, big));
  EXPECT_EQ(read_file(f), big);
  EXPECT_EQ(d.files(), 1);  // no temporary left
  struct stat st {};
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  mode_t mask = umask(0);
  umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST(WriteFileAtomically, MissingDirectoryHasAHint) {
  auto r = write_file_atomically("/nonexistent-chokepoint-dir/x.svg", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errno_value, ENOENT);
  EXPECT_NE(r.error().hint.find("does not exist"), std::string::npos);
}

TEST(WriteFileAtomically, ExistingDirectoryAsTargetFailsAndCleansUp) {
  TempDir d;
  std::filesystem::create_directory(d.path + "/sub");
  auto r = write_file_atomically(d.path + "/sub", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(d.files(), 1);  // only "sub": the temporary was removed
}

TEST(CheckWritable, Cases) {
  TempDir d;
  EXPECT_TRUE(check_writable(d.path + "/x.svg"));
  auto dir = check_writable(d.path);
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().errno_value, EISDIR);
  auto missing = check_writable("/nonexistent-chokepoint-dir/x.svg");
  ASSERT_FALSE(missing);
  EXPECT_FALSE(missing.error().hint.empty());
  EXPECT_TRUE(check_writable("relative-name.json"));  // the current directory
}

}  // namespace
}  // namespace chokepoint::util
