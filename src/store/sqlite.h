#pragma once
// A thin owner of SQLite handles for store/: a connection and prepared statements, with errors
// as util::Error. Not a general wrapper: only what the recording code needs.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace chokepoint::store {

// An Error for the connection's last failure: "<what>: <sqlite message>", with a hint that
// depends on the kind of failure (a full disk, a corrupt or foreign file, no permission).
util::Error sqlite_error(sqlite3* db, int rc, const std::string& what, const std::string& path);

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

// A prepared statement. bind_* take 1-based indexes; columns are 0-based.
class Stmt {
 public:
  Stmt() = default;
  static util::Result<Stmt> prepare(sqlite3* db, std::string_view sql);
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_.get(), i, v); }
  void bind_u64(int i, std::uint64_t v) { bind(i, static_cast<std::int64_t>(v)); }
  void bind_opt(int i, const std::optional<std::uint64_t>& v) {
    if (v) {
      bind_u64(i, *v);
    } else {
      sqlite3_bind_null(s_.get(), i);
    }
  }
  void bind_null(int i) { sqlite3_bind_null(s_.get(), i); }
  void bind_double(int i, double v) { sqlite3_bind_double(s_.get(), i, v); }
  void bind_text(int i, std::string_view v) {
    sqlite3_bind_text(s_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob64(s_.get(), i, v.data(), v.size(), SQLITE_TRANSIENT);
  }
  // Steps once: SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(s_.get()); }
  // Steps a statement that returns no rows and resets it.
  int run() {
    int rc = step();
    sqlite3_reset(s_.get());
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
  }
  void reset() { sqlite3_reset(s_.get()); }
  bool is_null(int c) const { return sqlite3_column_type(s_.get(), c) == SQLITE_NULL; }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_.get(), c); }
  std::uint64_t u64(int c) const { return static_cast<std::uint64_t>(i64(c)); }
  double f64(int c) const { return sqlite3_column_double(s_.get(), c); }
  std::optional<std::uint64_t> opt_u64(int c) const {
    if (is_null(c)) return std::nullopt;
    return u64(c);
  }
  // A blob column's bytes, valid until the next step or reset.
  std::string_view blob(int c) const {
    const void* p = sqlite3_column_blob(s_.get(), c);
    return p ? std::string_view(static_cast<const char*>(p),
                                static_cast<std::size_t>(sqlite3_column_bytes(s_.get(), c)))
             : std::string_view();
  }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_.get(), c);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_.get(), c)))
             : std::string();
  }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> s_;
};

// Runs SQL that returns no rows (several statements allowed).
util::Result<void> exec(sqlite3* db, const std::string& sql, const std::string& path);

}  // namespace chokepoint::store
