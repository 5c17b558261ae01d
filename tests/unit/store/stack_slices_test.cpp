// Stacks over time in a recording (store/stack_slices.h, schema 3): slices written with the
// ticks read back by kind and time, each stack kept once, rotation drops the old slices and the
// stacks no slice uses, and recordings made before schema 3 read as ones without stacks.
#include "store/stack_slices.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "store/recording.h"
#include "support/files.h"

namespace chokepoint::store {
namespace {

constexpr std::int64_t kMs = 1'000'000;

std::string temp_path(const std::string& name) {
  static const test_support::TempDir dir("chokepoint-stack-slices-test");
  return dir.path + "/" + name;
}

std::int64_t count(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::int64_t n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

model::Tick tick(std::int64_t at_ns) {
  model::Tick t;
  t.at_ns = at_ns;
  return t;
}

StackSlice slice(StackKind kind, std::int64_t from_ns, std::int64_t to_ns,
                 std::vector<FoldedCount> stacks) {
  return {.kind = kind,
          .from_ns = from_ns,
          .to_ns = to_ns,
          .frequency_hz = kind == StackKind::kOnCpu ? 49.0 : 0.0,
          .lost = 0,
          .stacks = std::move(stacks)};
}

TEST(StackSlices, ReadBackByKindAndTimeEachStackKeptOnce) {
  const std::string path = temp_path("slices.chokepoint");
  {
    auto w = RecordingWriter::create(path, {});
    ASSERT_TRUE(w) << w.error().message;
    (*w)->begin({{"pid", "1", {}}, 100 * kMs});
    (*w)->add(tick(1000 * kMs));
    ASSERT_TRUE((*w)->add_stack_slice(slice(StackKind::kOnCpu, 1000 * kMs, 2000 * kMs,
                                            {{"lab (1);main;hash", 40}, {"lab (1);main", 2}})));
    ASSERT_TRUE((*w)->add_stack_slice(
        slice(StackKind::kOffCpu, 1000 * kMs, 2000 * kMs, {{"lab (1);main;fsync", 9000}})));
    (*w)->add(tick(2000 * kMs));
    ASSERT_TRUE((*w)->add_stack_slice(slice(StackKind::kOnCpu, 2000 * kMs, 3000 * kMs,
                                            {{"lab (1);main;hash", 45}, {"x;a b;c", 1}})));
    (*w)->add(tick(3000 * kMs));
  }
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->meta().schema_version, kSchemaVersion);  // the stack tables came with 3
  auto on = r->stack_slices(StackKind::kOnCpu, 0, 10'000 * kMs);
  ASSERT_TRUE(on) << on.error().message;
  ASSERT_EQ(on->size(), 2u);
  EXPECT_EQ((*on)[0].from_ns, 1000 * kMs);
  EXPECT_EQ((*on)[0].frequency_hz, 49.0);
  EXPECT_EQ((*on)[0].stacks.size(), 2u);
  ASSERT_EQ((*on)[1].stacks.size(), 2u);
  std::uint64_t hash = 0;
  for (const auto& s : (*on)[1].stacks) {
    if (s.frames == "lab (1);main;hash") hash = s.value;
  }
  EXPECT_EQ(hash, 45u);
  // A window that only the second slice overlaps.
  auto late = r->stack_slices(StackKind::kOnCpu, 2500 * kMs, 2600 * kMs);
  ASSERT_TRUE(late);
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ((*late)[0].from_ns, 2000 * kMs);
  auto off = r->stack_slices(StackKind::kOffCpu, 0, 10'000 * kMs);
  ASSERT_TRUE(off);
  ASSERT_EQ(off->size(), 1u);
  EXPECT_EQ(off->front().stacks.front().value, 9000u);
  // "lab (1);main;hash" twice, kept once: four distinct stacks.
  EXPECT_EQ(count(path, "SELECT count(*) FROM stack"), 4);
  EXPECT_EQ(count(path, "SELECT count(*) FROM stack_count"), 5);
}

TEST(StackSlices, RotationDropsOldSlicesAndUnusedStacks) {
  const std::string path = temp_path("rotated.chokepoint");
  WriterOptions opt;
  opt.keep_for_ns = 3000 * kMs;
  opt.keyframe_every_ns = 1000 * kMs;
  {
    auto w = RecordingWriter::create(path, std::move(opt));
    ASSERT_TRUE(w);
    (*w)->begin({{"pid", "1", {}}, 100 * kMs});
    for (int i = 1; i <= 100; ++i) {
      const std::int64_t at = i * 100 * kMs;
      (*w)->add(tick(at));
      if (i % 10 == 0) {
        // A stack of its own in every slice, and one shared by all.
        ASSERT_TRUE(
            (*w)->add_stack_slice(slice(StackKind::kOnCpu, at - 1000 * kMs, at,
                                        {{"p;shared", 1}, {"p;only " + std::to_string(i), 2}})));
      }
    }
  }
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r);
  const auto range = r->time_range();
  ASSERT_TRUE(range);
  EXPECT_GE(range->first, 6000 * kMs);
  auto kept = r->stack_slices(StackKind::kOnCpu, 0, 100'000 * kMs);
  ASSERT_TRUE(kept);
  ASSERT_FALSE(kept->empty());
  EXPECT_LT(kept->size(), 10u);
  EXPECT_EQ(kept->back().to_ns, 10'000 * kMs);  // the newest is never dropped
  for (const auto& s : *kept) EXPECT_GT(s.to_ns, range->first);
  // Only the stacks of the slices left: theirs and the shared one.
  EXPECT_EQ(count(path, "SELECT count(*) FROM stack"), static_cast<std::int64_t>(kept->size()) + 1);
}

TEST(StackSlices, OlderSchemasHaveNoStacks) {
  const std::string path =
      std::string(CHOKEPOINT_SOURCE_DIR) + "/tests/fixtures/recordings/lab_lock_v2.chokepoint";
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->meta().schema_version, 2);
  auto on = r->stack_slices(StackKind::kOnCpu, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(on) << on.error().message;
  EXPECT_TRUE(on->empty());
}

TEST(StackSlices, HostileRowsAreSkippedNotTrusted) {
  const std::string path = temp_path("hostile.chokepoint");
  {
    auto w = RecordingWriter::create(path, {});
    ASSERT_TRUE(w);
    (*w)->begin({{"pid", "1", {}}, 100 * kMs});
    (*w)->add(tick(1000 * kMs));
    ASSERT_TRUE((*w)->add_stack_slice(
        slice(StackKind::kOnCpu, 1000 * kMs, 2000 * kMs, {{"a;b", 3}, {"a;c", 4}})));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE stack_count SET value = -5 WHERE stack = 2;"
                         "INSERT INTO stack_slice VALUES(9, 0, 5000000000, 1000000000, 1e300, 0);"
                         "INSERT INTO stack_count VALUES(9, 1, 7);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r);
  auto on = r->stack_slices(StackKind::kOnCpu, 0, 100'000 * kMs);
  ASSERT_TRUE(on);
  ASSERT_EQ(on->size(), 1u);                 // the slice that ends before it starts is skipped
  ASSERT_EQ(on->front().stacks.size(), 1u);  // and the negative count
  EXPECT_EQ(on->front().stacks.front().frames, "a;b");
}

}  // namespace
}  // namespace chokepoint::store
