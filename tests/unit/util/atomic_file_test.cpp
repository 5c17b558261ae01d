#include "util/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace chokepoint::util {
namespace {

namespace fs = std::filesystem;

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "chokepoint-atomic-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::size_t entries() {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }
  fs::path dir_;
};

TEST_F(AtomicFile, WritesAndReplaces) {
  const fs::path p = dir_ / "out.txt";
  ASSERT_TRUE(write_file_atomically(p, "first"));
  EXPECT_EQ(read(p), "first");
  ASSERT_TRUE(write_file_atomically(p, std::string(1 << 20, 'x')));
  EXPECT_EQ(read(p).size(), 1u << 20);
  EXPECT_EQ(entries(), 1u);  // no temp file left behind
  struct stat st {};
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_NE(st.st_mode & S_IRGRP, 0u) << "not the 0600 of mkstemp";
}

TEST_F(AtomicFile, FailureLeavesTheDestinationAndNoTempFile) {
  const fs::path target = dir_ / "a-directory";
  fs::create_directory(target);
  auto r = write_file_atomically(target, "data");
  ASSERT_FALSE(r);
  EXPECT_FALSE(r.error().hint.empty());
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(entries(), 1u);
  auto missing = write_file_atomically(dir_ / "no" / "such" / "dir.txt", "data");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot create"), std::string::npos);
}

}  // namespace
}  // namespace chokepoint::util
