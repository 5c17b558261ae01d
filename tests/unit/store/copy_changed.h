// A recording damaged on purpose, for the store tests: a copy with one SQL statement run on it.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <string>

namespace chokepoint::store::test {

// Copies a recording to `copy` and runs `sql` on the copy; false when that fails.
inline bool copy_changed(const std::string& path, const std::string& copy, const char* sql) {
  std::filesystem::remove(copy);
  std::filesystem::copy_file(path, copy);
  sqlite3* db = nullptr;
  const bool ok = sqlite3_open(copy.c_str(), &db) == SQLITE_OK &&
                  sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  return ok;
}

}  // namespace chokepoint::store::test
