#include "app/recorded_window.h"

#include <cmath>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>

#include "util/escape.h"

namespace chokepoint::app {
namespace {

constexpr const char* kStacksNote = "diagnose_stacks";
constexpr const char* kLoadNote = "diagnose_load";
constexpr const char* kRunCostNote = "diagnose_run_cost";

}  // namespace

void add_stacks(const VerdictStacks& stacks, model::Observation& obs, analysis::Diagnosis& d) {
  if (stacks.source.name.empty()) return;
  if (!d.bottlenecks.empty()) {
    auto& evidence = d.bottlenecks.front().evidence;
    evidence.insert(evidence.end(), stacks.evidence.begin(), stacks.evidence.end());
  }
  obs.sources.push_back(stacks.source);
}

util::Result<void> save_window(store::RecordingWriter& writer, const model::Samples& samples,
                               const std::optional<VerdictStacks>& stacks, const RecordedLoad& load,
                               const RecordedRunCost& cost) {
  writer.begin(samples.info);
  for (const auto& tick : samples.ticks) writer.add(tick);
  if (writer.ticks_lost() > 0) {
    return util::Error{"the recording lost " + std::to_string(writer.ticks_lost()) + " of " +
                           std::to_string(samples.ticks.size()) + " ticks",
                       "free space where the recording is written, and record again", 0};
  }
  if (cost.wall_s > 0) {
    const nlohmann::json j{{"wall_s", cost.wall_s}, {"cpu_s", cost.cpu_s}, {"run", cost.run}};
    if (auto ok = writer.add_note(kRunCostNote, j.dump()); !ok) return ok;
  }
  if (!load.json.is_null()) {
    const nlohmann::json j{{"json", load.json}, {"text", load.text}};
    if (auto ok = writer.add_note(kLoadNote, j.dump()); !ok) return ok;
  }
  if (!stacks || stacks->source.name.empty()) return {};
  const auto& s = stacks->source;
  nlohmann::json j{
      {"evidence", stacks->evidence},
      {"source",
       {{"name", s.name}, {"available", s.available}, {"detail", s.detail}, {"hint", s.hint}}}};
  return writer.add_note(kStacksNote, j.dump());
}

std::optional<VerdictStacks> saved_stacks(const store::RecordingReader& reader) {
  auto text = reader.note(kStacksNote);
  if (!text) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
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
  auto src = j.find("source");
  if (src == j.end() || !src->is_object()) return std::nullopt;
  out.source.name = str(*src, "name");
  auto avail = src->find("available");
  out.source.available = avail != src->end() && avail->is_boolean() && avail->get<bool>();
  out.source.detail = str(*src, "detail");
  out.source.hint = str(*src, "hint");
  if (out.source.name.empty()) return std::nullopt;
  return out;
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

RecordedLoad saved_load(const store::RecordingReader& reader) {
  RecordedLoad out;
  auto text = reader.note(kLoadNote);
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

}  // namespace chokepoint::app
