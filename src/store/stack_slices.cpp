#include "store/stack_slices.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "store/sqlite.h"

namespace chokepoint::store {

std::string stack_schema_sql() {
  return "CREATE TABLE stack(id INTEGER PRIMARY KEY, folded TEXT NOT NULL);"
         "CREATE TABLE stack_slice(id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, from_ns INTEGER "
         "NOT NULL, to_ns INTEGER NOT NULL, frequency_hz REAL NOT NULL, lost INTEGER NOT NULL);"
         "CREATE TABLE stack_count(slice INTEGER NOT NULL, stack INTEGER NOT NULL, value INTEGER "
         "NOT NULL);"
         "CREATE INDEX stack_count_slice ON stack_count(slice);";
}

int StackTableWriter::write(sqlite3* db, const StackSlice& slice) {
  auto ins_slice = Stmt::prepare(
      db, "INSERT INTO stack_slice(kind, from_ns, to_ns, frequency_hz, lost) VALUES(?,?,?,?,?)");
  auto ins_stack = Stmt::prepare(db, "INSERT INTO stack VALUES(?,?)");
  auto ins_count = Stmt::prepare(db, "INSERT INTO stack_count VALUES(?,?,?)");
  if (!ins_slice || !ins_stack || !ins_count) return SQLITE_ERROR;
  ins_slice->bind(1, static_cast<std::int64_t>(slice.kind));
  ins_slice->bind(2, slice.from_ns);
  ins_slice->bind(3, slice.to_ns);
  ins_slice->bind_double(4, slice.frequency_hz);
  ins_slice->bind_u64(5, slice.lost);
  if (int rc = ins_slice->run(); rc != SQLITE_OK) return rc;
  const std::int64_t slice_id = sqlite3_last_insert_rowid(db);
  for (const auto& s : slice.stacks) {
    if (s.value == 0) continue;
    auto it = ids_.find(s.frames);
    if (it == ids_.end()) {
      const std::int64_t id = next_id_++;
      ins_stack->bind(1, id);
      ins_stack->bind_text(2, s.frames);
      if (int rc = ins_stack->run(); rc != SQLITE_OK) return rc;
      it = ids_.emplace(s.frames, id).first;
      tx_new_.push_back(s.frames);
    }
    ins_count->bind(1, slice_id);
    ins_count->bind(2, it->second);
    ins_count->bind_u64(3, s.value);
    if (int rc = ins_count->run(); rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

void StackTableWriter::rolled_back() {
  for (const auto& f : tx_new_) ids_.erase(f);
  tx_new_.clear();
}

int StackTableWriter::delete_before_tick(sqlite3* db, std::int64_t tick_id) {
  if (ids_.empty()) return SQLITE_OK;  // nothing written yet
  constexpr const char* kEnded =
      "SELECT id FROM stack_slice WHERE to_ns <= (SELECT at_ns FROM tick WHERE id = ?1)";
  for (const std::string& sql : {fmt::format("DELETE FROM stack_count WHERE slice IN ({})", kEnded),
                                 fmt::format("DELETE FROM stack_slice WHERE id IN ({})", kEnded)}) {
    auto st = Stmt::prepare(db, sql);
    if (!st) return SQLITE_ERROR;
    st->bind(1, tick_id);
    if (int rc = st->run(); rc != SQLITE_OK) return rc;
  }
  // Stacks no slice uses any more: forgotten here too, so that a later slice writes them again.
  auto unused = Stmt::prepare(
      db, "SELECT id, folded FROM stack WHERE id NOT IN (SELECT DISTINCT stack FROM stack_count)");
  if (!unused) return SQLITE_ERROR;
  std::vector<std::string> gone;
  int rc = SQLITE_OK;
  while ((rc = unused->step()) == SQLITE_ROW) gone.push_back(unused->text(1));
  if (rc != SQLITE_DONE) return rc;
  if (gone.empty()) return SQLITE_OK;
  auto del = Stmt::prepare(
      db, "DELETE FROM stack WHERE id NOT IN (SELECT DISTINCT stack FROM stack_count)");
  if (!del) return SQLITE_ERROR;
  if (rc = del->run(); rc != SQLITE_OK) return rc;
  for (const auto& f : gone) ids_.erase(f);
  return SQLITE_OK;
}

util::Result<std::vector<StackSlice>> read_stack_slices(sqlite3* db, const std::string& path,
                                                        StackKind kind, std::int64_t from_ns,
                                                        std::int64_t to_ns) {
  std::vector<StackSlice> out;
  auto has = Stmt::prepare(db,
                           "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                           "'stack_slice'");
  if (!has) return sqlite_error(db, SQLITE_ERROR, "reading " + path, path);
  if (has->step() != SQLITE_ROW) return out;  // before schema 3: no stacks
  auto slices = Stmt::prepare(db,
                              "SELECT id, from_ns, to_ns, frequency_hz, lost FROM stack_slice "
                              "WHERE kind = ?1 AND to_ns > ?2 AND from_ns < ?3 ORDER BY from_ns");
  auto counts = Stmt::prepare(db,
                              "SELECT stack.folded, stack_count.value FROM stack_count JOIN "
                              "stack ON stack.id = stack_count.stack WHERE stack_count.slice = ?1");
  if (!slices || !counts) {
    return util::Error{fmt::format("{}: its stack tables are damaged", path),
                       "replay it without its stacks, or record again", EINVAL};
  }
  slices->bind(1, static_cast<std::int64_t>(kind));
  slices->bind(2, from_ns);
  slices->bind(3, to_ns);
  int rc = SQLITE_OK;
  while ((rc = slices->step()) == SQLITE_ROW) {
    StackSlice s;
    s.kind = kind;
    s.from_ns = slices->i64(1);
    s.to_ns = slices->i64(2);
    if (s.to_ns < s.from_ns) continue;
    const double hz = slices->f64(3);
    s.frequency_hz = std::isfinite(hz) ? std::clamp(hz, 0.0, 1e6) : 0.0;
    s.lost = slices->u64(4);
    counts->bind(1, slices->i64(0));
    while ((rc = counts->step()) == SQLITE_ROW) {
      const std::int64_t v = counts->i64(1);
      if (v <= 0) continue;
      s.stacks.push_back({counts->text(0), static_cast<std::uint64_t>(v)});
    }
    counts->reset();
    if (rc != SQLITE_DONE) return sqlite_error(db, rc, "reading " + path, path);
    out.push_back(std::move(s));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "reading " + path, path);
  return out;
}

}  // namespace chokepoint::store
