#include "app/recorded_window.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>
#include <algorithm>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "app/version.h"
#include "profile/folded.h"
#include "render/flamegraph_folded.h"
#include "util/escape.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

constexpr const char* kStacksNote = "diagnose_stacks";
constexpr const char* kLoadNote = "diagnose_load";
constexpr const char* kRunCostNote = "diagnose_run_cost";
constexpr const char* kServicesNote = "diagnose_services";
constexpr const char* kKneeNote = "knee_run";
constexpr const char* kTiersNote = "diagnose_tiers";
constexpr const char* kTierStacksNote = "diagnose_tier_stacks";
// A recording is a hostile file: at most this many tier roots are read back.
constexpr std::size_t kMaxTiers = 1024;
// A recording is a hostile file: at most this many services and entries per map are read back.
constexpr std::size_t kMaxServiceEntries = 4096;

const char* weight_name(profile::Weight w) {
  switch (w) {
    case profile::Weight::kNanoseconds:
      return "nanoseconds";
    case profile::Weight::kBytes:
      return "bytes";
    case profile::Weight::kSamples:
      break;
  }
  return "samples";
}

// The profile behind the stack evidence, its stacks as folded text (render/flamegraph_folded.h).
nlohmann::json profile_json(const profile::Profile& p) {
  return {{"title", p.title},
          {"off_cpu", p.off_cpu},
          {"weight", weight_name(p.weight)},
          {"frequency_hz", p.frequency_hz},
          {"duration_s", p.duration_s},
          {"lost_samples", p.lost_samples},
          {"truncated_stacks", p.truncated_stacks},
          {"failed_stacks", p.failed_stacks},
          {"notes", p.notes},
          {"folded", render::folded(p)}};
}

// nullopt when the note's profile is missing or damaged (a recording is a hostile file).
std::optional<profile::Profile> profile_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  auto folded = j.find("folded");
  if (folded == j.end() || !folded->is_string()) return std::nullopt;
  profile::Profile p;
  p.title = j.value("title", std::string());
  p.off_cpu = j.value("off_cpu", false);
  const std::string weight = j.value("weight", std::string("samples"));
  p.weight = weight == "nanoseconds" ? profile::Weight::kNanoseconds
             : weight == "bytes"     ? profile::Weight::kBytes
                                     : profile::Weight::kSamples;
  p.frequency_hz = j.value("frequency_hz", 0.0);
  p.duration_s = j.value("duration_s", 0.0);
  p.lost_samples = j.value("lost_samples", std::uint64_t{0});
  p.truncated_stacks = j.value("truncated_stacks", std::uint64_t{0});
  p.failed_stacks = j.value("failed_stacks", std::uint64_t{0});
  if (auto notes = j.find("notes"); notes != j.end() && notes->is_array()) {
    for (const auto& n : *notes) {
      if (n.is_string()) p.notes.push_back(n.get<std::string>());
    }
  }
  if (!profile::parse_folded(folded->get<std::string>(), p)) return std::nullopt;
  return p;
}

// The stacks behind a verdict (VerdictStacks) as kept in a note: the evidence, the fix, the
// source, the profile as folded text and each thread's hottest function.
nlohmann::json stacks_json(const VerdictStacks& stacks) {
  const auto& s = stacks.source;
  nlohmann::json j{
      {"evidence", stacks.evidence},
      {"fix", stacks.fix},
      {"source",
       {{"name", s.name}, {"available", s.available}, {"detail", s.detail}, {"hint", s.hint}}}};
  if (stacks.profile) j["profile"] = profile_json(*stacks.profile);
  if (!stacks.thread_functions.empty()) {
    nlohmann::json functions = nlohmann::json::array();
    for (const auto& [tid, f] : stacks.thread_functions) {
      functions.push_back({{"tid", tid}, {"function", f.function}, {"share", f.share}});
    }
    j["thread_functions"] = functions;
  }
  return j;
}

// Reads back what stacks_json wrote; nullopt when it is not that (a recording is a hostile file).
std::optional<VerdictStacks> stacks_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  auto str = [](const nlohmann::json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  VerdictStacks out;
  if (auto ev = j.find("evidence"); ev != j.end() && ev->is_array()) {
    for (const auto& e : *ev) {
      if (e.is_string()) out.evidence.push_back(e.get<std::string>());
    }
  }
  out.fix = str(j, "fix");  // absent in recordings made before leak stacks: none
  auto src = j.find("source");
  if (src == j.end() || !src->is_object()) return std::nullopt;
  out.source.name = str(*src, "name");
  auto avail = src->find("available");
  out.source.available = avail != src->end() && avail->is_boolean() && avail->get<bool>();
  out.source.detail = str(*src, "detail");
  out.source.hint = str(*src, "hint");
  if (out.source.name.empty()) return std::nullopt;
  // Absent in recordings made before chains named their root's function: none.
  if (auto tf = j.find("thread_functions"); tf != j.end() && tf->is_array()) {
    for (const auto& f : *tf) {
      if (out.thread_functions.size() >= kMaxServiceEntries) break;
      const auto tid = f.find("tid");
      const auto share = f.find("share");
      if (!f.is_object() || tid == f.end() || !tid->is_number_integer() || share == f.end() ||
          !share->is_number()) {
        continue;
      }
      out.thread_functions[tid->get<int>()] = {str(f, "function"),
                                               std::clamp(share->get<double>(), 0.0, 1.0)};
    }
  }
  if (auto p = j.find("profile"); p != j.end()) {
    try {
      out.profile = profile_from_json(*p);
    } catch (const nlohmann::json::exception&) {
      out.profile.reset();  // a field of the wrong type: no flame graph, the evidence stays
    }
  }
  return out;
}

nlohmann::json service_json(const model::ServiceObservation& s) {
  nlohmann::json gauges = nlohmann::json::object();
  for (const auto& [name, g] : s.gauges) {
    gauges[name] = {{"min", g.min}, {"max", g.max}, {"mean", g.mean}, {"last", g.last}};
  }
  nlohmann::json waits = nlohmann::json::object();
  for (const auto& [pid, states] : s.backend_waits) waits[std::to_string(pid)] = states;
  return {{"kind", model::service_kind_name(s.kind)},
          {"endpoint", s.endpoint},
          {"how", s.how},
          {"duration_ns", s.duration_ns},
          {"samples_ok", s.samples_ok},
          {"samples_failed", s.samples_failed},
          {"error", s.error},
          {"hint", s.hint},
          {"counters_first", s.counters_first},
          {"counters_last", s.counters_last},
          {"gauges", gauges},
          {"settings", s.settings},
          {"backend_waits", waits},
          {"activity_samples", s.activity_samples},
          {"slow", s.slow}};
}

// Reads back what service_json wrote; nullopt for anything else (wrong types, unknown kind).
std::optional<model::ServiceObservation> service_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto integer = [&](const char* k) -> std::int64_t {
    auto it = j.find(k);
    return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  };
  auto numbers = [&](const char* k) {
    std::map<std::string, double> out;
    auto it = j.find(k);
    if (it == j.end() || !it->is_object()) return out;
    for (const auto& [name, v] : it->items()) {
      if (out.size() >= kMaxServiceEntries) break;
      if (v.is_number() && std::isfinite(v.get<double>())) out[name] = v.get<double>();
    }
    return out;
  };
  model::ServiceObservation s;
  const std::string kind = str("kind");
  bool known = false;
  for (auto k :
       {model::ServiceKind::kPostgres, model::ServiceKind::kRedis, model::ServiceKind::kMemcached,
        model::ServiceKind::kNginx, model::ServiceKind::kHaproxy}) {
    if (kind == model::service_kind_name(k)) {
      s.kind = k;
      known = true;
    }
  }
  if (!known) return std::nullopt;
  s.endpoint = str("endpoint");
  s.how = str("how");
  s.duration_ns = std::max<std::int64_t>(0, integer("duration_ns"));
  s.samples_ok = static_cast<int>(std::clamp<std::int64_t>(integer("samples_ok"), 0, 1 << 30));
  s.samples_failed =
      static_cast<int>(std::clamp<std::int64_t>(integer("samples_failed"), 0, 1 << 30));
  s.error = str("error");
  s.hint = str("hint");
  s.counters_first = numbers("counters_first");
  s.counters_last = numbers("counters_last");
  if (auto g = j.find("gauges"); g != j.end() && g->is_object()) {
    for (const auto& item : g->items()) {
      // Not a structured binding: a lambda cannot capture one before C++20's P1091 (clang 14).
      const auto& name = item.key();
      const auto& v = item.value();
      if (s.gauges.size() >= kMaxServiceEntries || !v.is_object()) continue;
      auto num = [&](const char* k) {
        auto it = v.find(k);
        return it != v.end() && it->is_number() && std::isfinite(it->get<double>())
                   ? it->get<double>()
                   : 0.0;
      };
      s.gauges[name] = {num("min"), num("max"), num("mean"), num("last")};
    }
  }
  if (auto st = j.find("settings"); st != j.end() && st->is_object()) {
    for (const auto& [name, v] : st->items()) {
      if (s.settings.size() < kMaxServiceEntries && v.is_string()) s.settings[name] = v;
    }
  }
  if (auto w = j.find("backend_waits"); w != j.end() && w->is_object()) {
    for (const auto& [pid_text, states] : w->items()) {
      if (s.backend_waits.size() >= kMaxServiceEntries || !states.is_object()) continue;
      char* end = nullptr;
      const long pid = std::strtol(pid_text.c_str(), &end, 10);
      if (end == pid_text.c_str() || *end != '\0' || pid <= 0 || pid > (1 << 22)) continue;
      for (const auto& [state, n] : states.items()) {
        if (n.is_number_integer() && n.get<std::int64_t>() >= 0 &&
            n.get<std::int64_t>() < (1 << 30)) {
          s.backend_waits[static_cast<int>(pid)][state] = n.get<int>();
        }
      }
    }
  }
  s.activity_samples =
      static_cast<int>(std::clamp<std::int64_t>(integer("activity_samples"), 0, 1 << 30));
  if (auto sl = j.find("slow"); sl != j.end() && sl->is_array()) {
    for (const auto& line : *sl) {
      if (s.slow.size() < kMaxServiceEntries && line.is_string()) s.slow.push_back(line);
    }
  }
  return s;
}

}  // namespace

void add_stacks(const VerdictStacks& stacks, model::Observation& obs, analysis::Diagnosis& d) {
  if (stacks.source.name.empty()) return;
  if (!d.bottlenecks.empty()) {
    auto& evidence = d.bottlenecks.front().evidence;
    evidence.insert(evidence.end(), stacks.evidence.begin(), stacks.evidence.end());
    // The stacks' fix is the first fix made specific (for a leak: "find what keeps memory" becomes
    // the allocation site found).
    auto& fixes = d.bottlenecks.front().fixes;
    if (!stacks.fix.empty()) {
      if (fixes.empty()) fixes.emplace_back();
      fixes.front() = stacks.fix;
    }
    analysis::name_chain_roots(d, stacks.thread_functions);
  }
  obs.sources.push_back(stacks.source);
}

util::Result<void> save_services(store::RecordingWriter& writer, const RecordedServices& services) {
  if (services.observations.empty() && services.notes.empty()) return {};
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& o : services.observations) arr.push_back(service_json(o));
  const nlohmann::json j{{"services", arr}, {"notes", services.notes}};
  // Raw bytes from the services: replaced where they are not UTF-8, never a failed write.
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return writer.add_note(kServicesNote, text);
}

util::Result<void> save_window(store::RecordingWriter& writer, const model::Samples& samples,
                               const std::optional<VerdictStacks>& stacks, const RecordedLoad& load,
                               const RecordedRunCost& cost, const RecordedServices& services) {
  writer.begin(samples.info);
  if (!services.probes.empty()) {
    if (auto ok = writer.set_probes(services.probes); !ok) return ok;
  }
  // Each poll with the first tick at or after it, as chokepoint record writes them.
  std::size_t next_poll = 0;
  auto polls_until = [&](std::int64_t at_ns) -> util::Result<void> {
    std::vector<model::ServicePoll> batch;
    while (next_poll < services.polls.size() && services.polls[next_poll].at_ns <= at_ns) {
      batch.push_back(services.polls[next_poll++]);
    }
    return writer.add_probe_polls(batch);
  };
  for (const auto& tick : samples.ticks) {
    writer.add(tick);
    if (auto ok = polls_until(tick.at_ns); !ok) return ok;
  }
  if (auto ok = polls_until(std::numeric_limits<std::int64_t>::max()); !ok) return ok;
  if (writer.ticks_lost() > 0) {
    return util::Error{"the recording lost " + std::to_string(writer.ticks_lost()) + " of " +
                           std::to_string(samples.ticks.size()) + " ticks",
                       "free space where the recording is written, and record again", 0};
  }
  if (auto ok = save_services(writer, services); !ok) return ok;
  if (cost.wall_s > 0) {
    const nlohmann::json j{{"wall_s", cost.wall_s}, {"cpu_s", cost.cpu_s}, {"run", cost.run}};
    if (auto ok = writer.add_note(kRunCostNote, j.dump()); !ok) return ok;
  }
  if (!load.json.is_null()) {
    const nlohmann::json j{{"json", load.json}, {"text", load.text}};
    if (auto ok = writer.add_note(kLoadNote, j.dump()); !ok) return ok;
  }
  if (!stacks || stacks->source.name.empty()) return {};
  // Frame names are the target's bytes: replaced where they are not UTF-8, never a failed write.
  return writer.add_note(
      kStacksNote,
      stacks_json(*stacks).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::optional<VerdictStacks> saved_stacks(const store::RecordingReader& reader) {
  auto text = reader.note(kStacksNote);
  if (!text) return std::nullopt;
  return stacks_from_json(nlohmann::json::parse(*text, nullptr, false));
}

RecordedServices saved_services(const store::RecordingReader& reader) {
  RecordedServices out;
  auto text = reader.note(kServicesNote);
  if (!text) return out;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return out;
  if (auto arr = j.find("services"); arr != j.end() && arr->is_array()) {
    for (const auto& o : *arr) {
      if (out.observations.size() >= kMaxServiceEntries) break;
      if (auto s = service_from_json(o)) out.observations.push_back(std::move(*s));
    }
  }
  if (auto notes = j.find("notes"); notes != j.end() && notes->is_array()) {
    for (const auto& n : *notes) {
      if (out.notes.size() < kMaxServiceEntries && n.is_string()) out.notes.push_back(n);
    }
  }
  return out;
}

RecordedServices window_services(const store::RecordingReader& reader, std::int64_t from_ns,
                                 std::int64_t to_ns, bool whole) {
  RecordedServices note = saved_services(reader);
  if (reader.probes().empty() || (whole && !note.observations.empty())) {
    return whole ? note : RecordedServices{};
  }
  // The whole recording: every poll, those made before its first tick too (the probes' first
  // reads come before the sampler's first tick).
  if (whole) {
    from_ns = std::numeric_limits<std::int64_t>::min();
    to_ns = std::numeric_limits<std::int64_t>::max();
  }
  auto polls = reader.probe_polls(from_ns, to_ns);
  if (!polls) throw util::FatalError(polls.error(), util::kExitRuntime);
  RecordedServices out;
  out.observations = model::fold_service_polls(reader.probes(), *polls, from_ns, to_ns);
  out.notes = std::move(note.notes);
  out.probes = reader.probes();
  out.polls = std::move(*polls);
  return out;
}

void ProbePollWriter::flush() {
  auto polls = take_();
  if (polls.empty()) return;
  const std::size_t n = polls.size();
  if (auto ok = writer_.add_probe_polls(polls); !ok) {
    if (lost_ == 0) util::print_error(ok.error());
    lost_ += n;
  } else {
    written_ += n;
  }
}

util::Result<void> save_tier_roots(store::RecordingWriter& writer, const std::vector<int>& roots) {
  if (roots.empty()) return {};
  return writer.add_note(kTiersNote, nlohmann::json{{"roots", roots}}.dump());
}

namespace {

// The array `field` of the JSON object in the recording's note `name`; an empty array when the
// note is absent or is not such an object (a damaged note reads as none).
nlohmann::json note_array(const store::RecordingReader& reader, const char* name,
                          const char* field) {
  auto text = reader.note(name);
  if (!text) return nlohmann::json::array();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return nlohmann::json::array();
  auto it = j.find(field);
  if (it == j.end() || !it->is_array()) return nlohmann::json::array();
  return std::move(*it);
}

}  // namespace

std::vector<int> saved_tier_roots(const store::RecordingReader& reader) {
  std::vector<int> out;
  for (const auto& r : note_array(reader, kTiersNote, "roots")) {
    if (out.size() >= kMaxTiers) break;
    // A pid is a positive int, given once: anything else makes the note damaged.
    if (!r.is_number_integer() || r.get<std::int64_t>() <= 0 ||
        r.get<std::int64_t>() > std::numeric_limits<int>::max() ||
        std::find(out.begin(), out.end(), r.get<int>()) != out.end()) {
      return {};
    }
    out.push_back(r.get<int>());
  }
  return out;
}

util::Result<void> save_tier_stacks(store::RecordingWriter& writer,
                                    const std::map<int, VerdictStacks>& stacks) {
  nlohmann::json tiers = nlohmann::json::array();
  for (const auto& [root, s] : stacks) {
    if (!s.source.name.empty()) tiers.push_back({{"root", root}, {"stacks", stacks_json(s)}});
  }
  if (tiers.empty()) return {};
  // Frame names are the target's bytes: replaced where they are not UTF-8, never a failed write.
  return writer.add_note(kTierStacksNote,
                         nlohmann::json{{"tiers", tiers}}.dump(
                             -1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::map<int, VerdictStacks> saved_tier_stacks(const store::RecordingReader& reader) {
  std::map<int, VerdictStacks> out;
  for (const auto& t : note_array(reader, kTierStacksNote, "tiers")) {
    if (out.size() >= kMaxTiers) break;
    if (!t.is_object()) continue;
    auto root = t.find("root");
    auto stacks = t.find("stacks");
    // A tier given twice keeps its first stacks; a damaged entry is left out, the others stay.
    if (root == t.end() || !root->is_number_integer() || root->get<std::int64_t>() <= 0 ||
        root->get<std::int64_t>() > std::numeric_limits<int>::max() || stacks == t.end() ||
        out.count(root->get<int>()) != 0) {
      continue;
    }
    if (auto s = stacks_from_json(*stacks)) out.emplace(root->get<int>(), std::move(*s));
  }
  return out;
}

bool is_diagnosis_recording(const store::RecordingReader& reader) {
  return reader.note(kRunCostNote).has_value();
}

RecordedRunCost saved_run_cost(const store::RecordingReader& reader) {
  RecordedRunCost out;
  auto text = reader.note(kRunCostNote);
  if (!text) return out;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return out;
  auto number = [&](const char* key) {
    auto it = j.find(key);
    const double v = it != j.end() && it->is_number() ? it->get<double>() : 0.0;
    return std::isfinite(v) && v >= 0 ? v : 0.0;
  };
  out.wall_s = number("wall_s");
  out.cpu_s = number("cpu_s");
  if (auto run = j.find("run"); run != j.end() && run->is_object()) out.run = *run;
  return out;
}

util::Result<void> save_run_alone(store::RecordingWriter& writer, const char* kind,
                                  const std::string& label, const RecordedLoad& run) {
  model::RecordingInfo info;
  info.target.kind = kind;
  info.target.spec = label;
  writer.begin(info);
  const nlohmann::json j{{"json", run.json}, {"text", run.text}};
  return writer.add_note(std::string_view(kind) == kKneeRunTargetKind ? kKneeNote : kLoadNote,
                         j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void record_run_alone(const std::string& path, const char* kind, const std::string& label,
                      const RecordedLoad& run) {
  store::WriterOptions wo;
  wo.chokepoint_version = kVersion;
  auto w = store::RecordingWriter::create(path, std::move(wo));
  if (!w) throw util::FatalError(w.error(), util::kExitRuntime);
  if (auto ok = save_run_alone(**w, kind, label, run); !ok) {
    throw util::FatalError(ok.error(), util::kExitRuntime);
  }
  std::cerr << fmt::format(
      "chokepoint: kept the run in {} (chokepoint replay, diff and report read it)\n",
      util::terminal_text(path));
}

namespace {

// A run kept as {"json": {...}, "text": "..."} under `key`.
RecordedLoad saved_run(const store::RecordingReader& reader, const char* key) {
  RecordedLoad out;
  auto text = reader.note(key);
  if (!text) return out;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return out;
  auto json = j.find("json");
  auto txt = j.find("text");
  if (json == j.end() || !json->is_object()) return out;
  out.json = *json;
  // The text was made safe when it was printed, but the file may not be the one that was written:
  // every line is made safe again (newlines stay, to keep the layout).
  if (txt != j.end() && txt->is_string()) {
    const std::string raw = txt->get<std::string>();
    for (std::size_t at = 0; at <= raw.size();) {
      const std::size_t nl = std::min(raw.find('\n', at), raw.size());
      out.text += util::terminal_text(std::string_view(raw).substr(at, nl - at));
      if (nl < raw.size()) out.text += '\n';
      at = nl + 1;
    }
  }
  return out;
}

}  // namespace

RecordedLoad saved_load(const store::RecordingReader& reader) {
  return saved_run(reader, kLoadNote);
}

RecordedLoad saved_knee(const store::RecordingReader& reader) {
  return saved_run(reader, kKneeNote);
}

}  // namespace chokepoint::app
