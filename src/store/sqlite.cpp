#include "store/sqlite.h"

#include <fmt/format.h>

namespace chokepoint::store {

util::Error sqlite_error(sqlite3* db, int rc, const std::string& what, const std::string& path) {
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string hint;
  switch (rc & 0xff) {
    case SQLITE_FULL:
      hint = fmt::format("the file system of {} is full: free space there", path);
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      hint = fmt::format("{} is damaged or not a chokepoint recording", path);
      break;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      hint = fmt::format("check that {} exists and that you may read it (and write its directory)",
                         path);
      break;
    case SQLITE_IOERR:
      hint = fmt::format("the disk of {} failed or is full", path);
      break;
    default:
      break;
  }
  return util::Error{fmt::format("{}: {}", what, msg), hint, 0};
}

util::Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, "preparing a query", "the recording");
  Stmt s;
  s.s_.reset(raw);
  return s;
}

util::Result<void> exec(sqlite3* db, const std::string& sql, const std::string& path) {
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, "writing " + path, path);
  return {};
}

}  // namespace chokepoint::store
