// The pure parsers: /proc/PID/maps, JIT perf maps, /proc/kallsyms.
#include "symbolize/parsers.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace chokepoint::symbolize {
namespace {

std::string read_fixture(const std::string& relative) {
  std::ifstream in(std::string(CHOKEPOINT_FIXTURES_DIR) + "/symbolize/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(MapsParser, ReadsEveryKindOfLine) {
  const std::string text =
      "55d0c3a00000-55d0c3a02000 r--p 00000000 fd:01 1835014                    /usr/bin/cat\n"
      "55d0c3a02000-55d0c3a07000 r-xp 00002000 fd:01 1835014                    /usr/bin/cat\n"
      "55d0c4c1e000-55d0c4c3f000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f1c2a400000-7f1c2a401000 rwxp 00000000 00:00 0 \n"
      "7f1c2a600000-7f1c2a628000 r-xp 00028000 103:02 4221 /opt/my app/lib x.so (deleted)\n"
      "7f1c2a700000-7f1c2a701000 r-xs 00000000 00:01 77 /memfd:jit-code (deleted)\n"
      "7ffd5b3e1000-7ffd5b3e3000 r-xp 00000000 00:00 0                          [vdso]\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";
  const MapsFile maps = parse_maps(text);
  EXPECT_EQ(maps.skipped_lines, 0u);
  ASSERT_EQ(maps.mappings.size(), 8u);

  const Mapping& text_segment = maps.mappings[1];
  EXPECT_EQ(text_segment.start, 0x55d0c3a02000u);
  EXPECT_EQ(text_segment.end, 0x55d0c3a07000u);
  EXPECT_EQ(text_segment.offset, 0x2000u);
  EXPECT_TRUE(text_segment.readable);
  EXPECT_FALSE(text_segment.writable);
  EXPECT_TRUE(text_segment.executable);
  EXPECT_FALSE(text_segment.shared);
  EXPECT_EQ(text_segment.dev_major, 0xfdu);
  EXPECT_EQ(text_segment.dev_minor, 1u);
  EXPECT_EQ(text_segment.inode, 1835014u);
  EXPECT_EQ(text_segment.path, "/usr/bin/cat");
  EXPECT_FALSE(text_segment.deleted);
  EXPECT_TRUE(text_segment.file_backed());
  EXPECT_TRUE(text_segment.contains(0x55d0c3a02000u));
  EXPECT_FALSE(text_segment.contains(0x55d0c3a07000u));

  EXPECT_EQ(maps.mappings[2].path, "[heap]");
  EXPECT_FALSE(maps.mappings[2].file_backed());

  const Mapping& anon = maps.mappings[3];
  EXPECT_TRUE(anon.path.empty());
  EXPECT_TRUE(anon.executable);
  EXPECT_FALSE(anon.file_backed());

  const Mapping& deleted = maps.mappings[4];
  EXPECT_EQ(deleted.path, "/opt/my app/lib x.so");
  EXPECT_TRUE(deleted.deleted);
  EXPECT_EQ(deleted.dev_major, 0x103u);
  EXPECT_EQ(deleted.dev_minor, 2u);
  EXPECT_TRUE(deleted.file_backed());

  const Mapping& memfd = maps.mappings[5];
  EXPECT_EQ(memfd.path, "/memfd:jit-code");
  EXPECT_TRUE(memfd.deleted);
  EXPECT_TRUE(memfd.shared);
  EXPECT_FALSE(memfd.file_backed());

  EXPECT_EQ(maps.mappings[6].path, "[vdso]");
  EXPECT_EQ(maps.mappings[7].start, 0xffffffffff600000u);
  EXPECT_FALSE(maps.mappings[7].readable);
}

TEST(MapsParser, SkipsAndCountsOddLines) {
  const std::string text =
      "\n"
      "garbage\n"
      "1000-2000 r-xp 00000000 fd:01 12 /ok\n"
      "2000-1000 r-xp 00000000 fd:01 12 /end-before-start\n"
      "3000-3000 r-xp 00000000 fd:01 12 /empty-range\n"
      "4000-5000 rwzp 00000000 fd:01 12 /bad-perms\n"
      "4000-5000 r-xp 00000000 fd01 12 /bad-dev\n"
      "4000-5000 r-xp 00000000 fd:01 -12 /bad-inode\n"
      "4000-5000 r-xp 00000000 fd:01\n"
      "-5000 r-xp 00000000 fd:01 1 /no-start\n"
      "10000000000000000-10000000000000001 r-xp 0 0:0 0 /too-wide\n"
      "6000-7000 r-xp 00001000 fd:01 13 /crlf\r\n";
  const MapsFile maps = parse_maps(text);
  ASSERT_EQ(maps.mappings.size(), 2u);
  EXPECT_EQ(maps.mappings[0].path, "/ok");
  EXPECT_EQ(maps.mappings[1].path, "/crlf");
  EXPECT_EQ(maps.skipped_lines, 9u);
}

TEST(MapsParser, EmptyInputGivesNothing) {
  const MapsFile maps = parse_maps("");
  EXPECT_TRUE(maps.mappings.empty());
  EXPECT_EQ(maps.skipped_lines, 0u);
}

TEST(PerfMapParser, ReadsStartSizeAndNamesWithSpaces) {
  const PerfMap map = parse_perf_map(
      "7f0000001000 40 LazyCompile:*fib /app/fib.js:3\n"
      "0x7f0000002000 0x20 py::main:/app/x.py\n"
      "7f0000000000 10 Interpreter\r\n");
  EXPECT_EQ(map.skipped_lines, 0u);
  ASSERT_EQ(map.symbols.size(), 3u);
  EXPECT_EQ(map.symbols[0].name, "Interpreter");  // sorted by start
  ASSERT_NE(map.find(0x7f0000001000), nullptr);
  EXPECT_EQ(map.find(0x7f000000103f)->name, "LazyCompile:*fib /app/fib.js:3");
  EXPECT_EQ(map.find(0x7f0000001040), nullptr);
  EXPECT_EQ(map.find(0x7f0000002010)->name, "py::main:/app/x.py");
  EXPECT_EQ(map.find(0x10), nullptr);
}

TEST(PerfMapParser, LaterLinesWinWhereRangesOverlap) {
  // A JIT reused [0x1010, 0x1020) of old code for new code.
  const PerfMap map = parse_perf_map(
      "1000 40 old\n"
      "1010 10 new\n");
  ASSERT_EQ(map.symbols.size(), 3u);
  EXPECT_EQ(map.find(0x1000)->name, "old");
  EXPECT_EQ(map.find(0x1015)->name, "new");
  EXPECT_EQ(map.find(0x1020)->name, "old");
  EXPECT_EQ(map.find(0x103f)->name, "old");
  for (std::size_t i = 1; i < map.symbols.size(); ++i) {
    EXPECT_LE(map.symbols[i - 1].end, map.symbols[i].start);
  }
  // A later line covering several older ones replaces them all.
  const PerfMap covered = parse_perf_map("1000 10 a\n1010 10 b\n1020 10 c\n1008 20 d\n");
  ASSERT_EQ(covered.symbols.size(), 3u);
  EXPECT_EQ(covered.find(0x1007)->name, "a");
  EXPECT_EQ(covered.find(0x1008)->name, "d");
  EXPECT_EQ(covered.find(0x1027)->name, "d");
  EXPECT_EQ(covered.find(0x1028)->name, "c");
}

TEST(PerfMapParser, SkipsBadLines) {
  const PerfMap map = parse_perf_map(
      "zz 10 bad-start\n"
      "1000 0 zero-size\n"
      "1000 10\n"
      "ffffffffffffffff 10 overflows\n"
      "1000 -10 negative\n"
      "2000 10 good\n");
  EXPECT_EQ(map.skipped_lines, 5u);
  ASSERT_EQ(map.symbols.size(), 1u);
  EXPECT_EQ(map.symbols[0].name, "good");
}

TEST(KallsymsParser, FindsFunctionsAndModules) {
  const KernelSymbols k = parse_kallsyms(read_fixture("proc_visible/kallsyms"));
  EXPECT_FALSE(k.addresses_hidden);
  EXPECT_EQ(k.skipped_lines, 1u);
  ASSERT_NE(k.find(0xffffffff81004010), nullptr);
  EXPECT_EQ(k.find(0xffffffff81004010)->name, "schedule");
  EXPECT_EQ(k.find(0xffffffff81004010)->module, "");
  // Data symbols do not end a function: the data object's address still counts as code before.
  EXPECT_EQ(k.find(0xffffffff81003500)->name, "secondary_startup_64");
  EXPECT_EQ(k.find(0xffffffff81004100)->name, "weak_helper");
  // Aliases: the first in the file stays.
  EXPECT_EQ(k.find(0xffffffff81000000)->name, "_stext");
  EXPECT_EQ(k.find(0xffffffffc0a01210)->name, "nft_do_chain");
  EXPECT_EQ(k.find(0xffffffffc0a01210)->module, "nf_tables");
  EXPECT_EQ(k.find(0xffffffffc0b00010)->module, "bpf");
  EXPECT_EQ(k.find(0xffffffff80000000), nullptr);  // below the first symbol
  EXPECT_EQ(k.find(0xffffffffc0b00000 + KernelSymbols::kMaxLastSymbolBytes + 1), nullptr);
  for (std::size_t i = 1; i < k.symbols.size(); ++i) {
    EXPECT_LT(k.symbols[i - 1].address, k.symbols[i].address);
  }
}

TEST(KallsymsParser, AllZeroAddressesMeanHidden) {
  const KernelSymbols k = parse_kallsyms(read_fixture("proc_hidden/kallsyms"));
  EXPECT_TRUE(k.addresses_hidden);
  EXPECT_TRUE(k.symbols.empty());
  EXPECT_EQ(k.find(0xffffffff81004010), nullptr);
}

}  // namespace
}  // namespace chokepoint::symbolize
