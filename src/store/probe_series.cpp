#include "store/probe_series.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "store/sqlite.h"

namespace chokepoint::store {
namespace {

using nlohmann::json;

constexpr model::ServiceKind kKinds[] = {model::ServiceKind::kPostgres, model::ServiceKind::kRedis,
                                         model::ServiceKind::kMemcached, model::ServiceKind::kNginx,
                                         model::ServiceKind::kHaproxy};

std::optional<model::ServiceKind> kind_from(const std::string& name) {
  for (auto k : kKinds) {
    if (name == model::service_kind_name(k)) return k;
  }
  return std::nullopt;
}

// Name: number entries of an object, finite numbers only, at most kMaxProbeEntries.
std::map<std::string, double> numbers(const json& j, const char* key) {
  std::map<std::string, double> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (const auto& [name, v] : it->items()) {
    if (out.size() >= kMaxProbeEntries) break;
    if (v.is_number() && std::isfinite(v.get<double>())) out[name] = v.get<double>();
  }
  return out;
}

std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string probe_schema_sql() {
  return "CREATE TABLE probe(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, endpoint TEXT NOT NULL, "
         "how TEXT NOT NULL);"
         "CREATE TABLE probe_sample(tick INTEGER NOT NULL, probe INTEGER NOT NULL, at_ns INTEGER "
         "NOT NULL, ok INTEGER NOT NULL, data BLOB NOT NULL);"
         "CREATE INDEX probe_sample_at ON probe_sample(at_ns);";
}

std::string poll_document(const model::ServicePoll& poll) {
  json j = json::object();
  if (!poll.ok) {
    j["error"] = poll.error;
    j["hint"] = poll.hint;
  } else {
    const auto& r = poll.reading;
    // Not finite (NaN, inf) has no JSON form: left out, as a reader would leave it out.
    auto finite = [](const std::map<std::string, double>& m) {
      json o = json::object();
      for (const auto& [k, v] : m) {
        if (std::isfinite(v)) o[k] = v;
      }
      return o;
    };
    if (!r.counters.empty()) j["counters"] = finite(r.counters);
    if (!r.gauges.empty()) j["gauges"] = finite(r.gauges);
    if (!r.settings.empty()) j["settings"] = r.settings;
    if (!r.backend_states.empty()) {
      json b = json::object();
      for (const auto& [pid, state] : r.backend_states) b[std::to_string(pid)] = state;
      j["backends"] = std::move(b);
    }
    if (!r.slow.empty()) j["slow"] = r.slow;
    if (r.new_counters_were_zero) j["new_counters_were_zero"] = true;
  }
  // Bytes from the service: replaced where they are not UTF-8, never a failed write.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool poll_from(std::string_view text, model::ServicePoll& poll) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return false;
  poll.reading = {};
  poll.error.clear();
  poll.hint.clear();
  if (!poll.ok) {
    poll.error = text_of(j, "error");
    poll.hint = text_of(j, "hint");
    return true;
  }
  auto& r = poll.reading;
  r.counters = numbers(j, "counters");
  r.gauges = numbers(j, "gauges");
  if (auto st = j.find("settings"); st != j.end() && st->is_object()) {
    for (const auto& [name, v] : st->items()) {
      if (r.settings.size() < kMaxProbeEntries && v.is_string()) r.settings[name] = v;
    }
  }
  if (auto b = j.find("backends"); b != j.end() && b->is_object()) {
    for (const auto& [pid_text, state] : b->items()) {
      if (r.backend_states.size() >= kMaxProbeEntries || !state.is_string()) continue;
      errno = 0;
      char* end = nullptr;
      const long pid = std::strtol(pid_text.c_str(), &end, 10);
      if (errno != 0 || end == pid_text.c_str() || *end != '\0' || pid <= 0 || pid > (1 << 22)) {
        continue;
      }
      r.backend_states[static_cast<int>(pid)] = state.get<std::string>();
    }
  }
  if (auto sl = j.find("slow"); sl != j.end() && sl->is_array()) {
    for (const auto& line : *sl) {
      if (r.slow.size() < kMaxProbeEntries && line.is_string()) r.slow.push_back(line);
    }
  }
  auto z = j.find("new_counters_were_zero");
  r.new_counters_were_zero = z != j.end() && z->is_boolean() && z->get<bool>();
  return true;
}

int ProbeTableWriter::write_probes(sqlite3* db, const std::vector<model::ServiceProbe>& probes) {
  auto st = Stmt::prepare(db, "INSERT OR REPLACE INTO probe VALUES(?,?,?,?)");
  if (!st) return SQLITE_ERROR;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    st->bind(1, static_cast<std::int64_t>(i));
    st->bind_text(2, model::service_kind_name(probes[i].kind));
    st->bind_text(3, probes[i].endpoint);
    st->bind_text(4, probes[i].how);
    if (int rc = st->run(); rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

int ProbeTableWriter::write_polls(sqlite3* db, std::int64_t tick_id,
                                  const std::vector<model::ServicePoll>& polls) {
  if (polls.empty()) return SQLITE_OK;
  auto st = Stmt::prepare(db, "INSERT INTO probe_sample VALUES(?,?,?,?,?)");
  if (!st) return SQLITE_ERROR;
  for (const auto& p : polls) {
    const std::string doc = poll_document(p);
    const std::string blob = blobs_.encode(doc);
    document_bytes_ += doc.size();
    stored_bytes_ += blob.size();
    st->bind(1, tick_id);
    st->bind(2, p.probe);
    st->bind(3, p.at_ns);
    st->bind(4, p.ok ? 1 : 0);
    st->bind_blob(5, blob);
    if (int rc = st->run(); rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

namespace {

bool has_table(sqlite3* db, const char* name) {
  auto q = Stmt::prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  if (!q) return false;
  q->bind_text(1, name);
  return q->step() == SQLITE_ROW;
}

util::Error damaged_probes(const std::string& path) {
  return util::Error{fmt::format("reading {}: its probe table is damaged", path),
                     "the file was changed or damaged after it was written: record again", EINVAL};
}

}  // namespace

util::Result<std::vector<model::ServiceProbe>> read_probes(sqlite3* db, const std::string& path) {
  std::vector<model::ServiceProbe> out;
  if (!has_table(db, "probe")) return out;  // before schema 5
  auto q = Stmt::prepare(db, "SELECT id, kind, endpoint, how FROM probe ORDER BY id");
  if (!q) return damaged_probes(path);
  int rc = SQLITE_OK;
  while ((rc = q->step()) == SQLITE_ROW) {
    auto kind = kind_from(q->text(1));
    if (!kind || q->i64(0) != static_cast<std::int64_t>(out.size()) ||
        out.size() >= kMaxProbeEntries) {
      return damaged_probes(path);
    }
    out.push_back({*kind, q->text(2), q->text(3)});
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "reading " + path, path);
  return out;
}

util::Result<std::vector<model::ServicePoll>> read_probe_polls(sqlite3* db, const std::string& path,
                                                               std::size_t probe_count,
                                                               std::int64_t from_ns,
                                                               std::int64_t to_ns) {
  std::vector<model::ServicePoll> out;
  if (!has_table(db, "probe_sample")) return out;  // before schema 5
  auto q = Stmt::prepare(db,
                         "SELECT tick, probe, at_ns, ok, data FROM probe_sample WHERE at_ns >= ?1 "
                         "AND at_ns <= ?2 ORDER BY at_ns, rowid");
  if (!q) return damaged_probes(path);
  q->bind(1, from_ns);
  q->bind(2, to_ns);
  BlobDecoder blobs;
  int rc = SQLITE_OK;
  while ((rc = q->step()) == SQLITE_ROW) {
    const std::int64_t tick = q->i64(0);
    const std::int64_t probe = q->i64(1);
    const std::int64_t ok = q->i64(3);
    model::ServicePoll p;
    p.at_ns = q->i64(2);
    p.ok = ok == 1;
    std::optional<std::string> doc;
    if (probe < 0 || static_cast<std::uint64_t>(probe) >= probe_count || (ok != 0 && ok != 1) ||
        !(doc = blobs.decode(q->blob(4))) || !poll_from(*doc, p)) {
      return util::Error{
          fmt::format("reading {}: the probe poll of tick {} at {:.3f} s is damaged", path, tick,
                      static_cast<double>(p.at_ns) / 1e9),
          "the file was changed or damaged after it was written; replay a window before it (--to)",
          EINVAL};
    }
    p.probe = static_cast<std::uint32_t>(probe);
    out.push_back(std::move(p));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "reading " + path, path);
  return out;
}

}  // namespace chokepoint::store
