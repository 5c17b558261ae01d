#include "render/speedscope.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "render/flamegraph_folded.h"
#include "unit/render/sample_profile.h"

namespace chokepoint::render {
namespace {

using namespace sample;  // NOLINT: the sample profiles

// Serialises and parses back: what a reader of the file sees.
nlohmann::json round_trip(const profile::Profile& p) {
  return nlohmann::json::parse(speedscope(p).dump());
}

TEST(Speedscope, FileStructureFollowsTheSchema) {
  const nlohmann::json j = round_trip(lab_cpu_profile());
  EXPECT_EQ(j.at("$schema"), "https://www.speedscope.app/file-format-schema.json");
  ASSERT_TRUE(j.at("shared").at("frames").is_array());
  for (const auto& f : j["shared"]["frames"]) {
    ASSERT_TRUE(f.at("name").is_string());
    if (f.contains("file")) {
      EXPECT_TRUE(f["file"].is_string());
    }
    if (f.contains("line")) {
      EXPECT_GT(f["line"].get<int>(), 0);
    }
  }
  ASSERT_EQ(j.at("profiles").size(), 1u);
  const auto& prof = j["profiles"][0];
  EXPECT_EQ(prof.at("type"), "sampled");
  EXPECT_EQ(prof.at("unit"), "none");
  EXPECT_EQ(prof.at("name"), lab_cpu_profile().title);
  EXPECT_EQ(prof.at("startValue"), 0);
  ASSERT_EQ(prof.at("samples").size(), prof.at("weights").size());
  const std::size_t frame_count = j["shared"]["frames"].size();
  for (const auto& sample : prof["samples"]) {
    ASSERT_FALSE(sample.empty());
    for (const auto& i : sample) EXPECT_LT(i.get<std::size_t>(), frame_count);
  }
  EXPECT_EQ(j.at("activeProfileIndex"), 0);
  EXPECT_EQ(j.at("exporter"), "chokepoint");
}

TEST(Speedscope, WeightsSumToTheProfileTotal) {
  for (const profile::Profile& p : {lab_cpu_profile(), lab_offcpu_profile()}) {
    const nlohmann::json j = round_trip(p);
    std::uint64_t sum = 0;
    for (const auto& w : j["profiles"][0]["weights"]) sum += w.get<std::uint64_t>();
    EXPECT_EQ(sum, total_value(p));
    EXPECT_EQ(j["profiles"][0]["endValue"].get<std::uint64_t>(), total_value(p));
  }
}

TEST(Speedscope, OffCpuUnitIsNanoseconds) {
  EXPECT_EQ(round_trip(lab_offcpu_profile())["profiles"][0]["unit"], "nanoseconds");
}

TEST(Speedscope, SamplesAreOutermostFirstWithFileAndLine) {
  const nlohmann::json j = round_trip(lab_cpu_profile());
  const auto& frames = j["shared"]["frames"];
  bool found = false;
  const auto& prof = j["profiles"][0];
  for (std::size_t s = 0; s < prof["samples"].size(); ++s) {
    const auto& sample = prof["samples"][s];
    const auto& leaf = frames[sample.back().get<std::size_t>()];
    if (leaf["name"] != "lab_cpu_hash_rounds") continue;
    found = true;
    EXPECT_EQ(frames[sample.front().get<std::size_t>()]["name"], "chokepoint-lab (1234)");
    EXPECT_EQ(leaf["file"], "lab/cpu.cpp");
    EXPECT_EQ(leaf["line"], 41);
    EXPECT_EQ(prof["weights"][s], 65);
  }
  EXPECT_TRUE(found);
}

TEST(Speedscope, KernelFramesCarryTheirModuleAndAnnotation) {
  const nlohmann::json j = round_trip(lab_cpu_profile());
  bool found = false;
  for (const auto& f : j["shared"]["frames"]) {
    if (f["name"] == "asm_sysvec_apic_timer_interrupt_[k]") {
      found = true;
      EXPECT_EQ(f["file"], "[kernel]");
      EXPECT_FALSE(f.contains("line"));
    }
  }
  EXPECT_TRUE(found);
}

TEST(Speedscope, DistinctLinesStayDistinctFrames) {
  // speedscope keys frames by (name, file, line): lines 60 and 61 of checksum are two frames.
  const nlohmann::json j = round_trip(lab_cpu_profile());
  int checksum_frames = 0;
  for (const auto& f : j["shared"]["frames"]) checksum_frames += f["name"] == "lab_cpu_checksum";
  EXPECT_EQ(checksum_frames, 2);
}

TEST(Speedscope, DeterministicWhateverTheStackOrder) {
  const std::string first = speedscope(lab_cpu_profile()).dump();
  for (unsigned seed = 1; seed <= 5; ++seed) {
    EXPECT_EQ(speedscope(shuffled(lab_cpu_profile(), seed)).dump(), first);
  }
}

TEST(Speedscope, CarriesTheHonestyCounters) {
  profile::Profile p = lab_cpu_profile();
  p.lost_samples = 3;
  p.truncated_stacks = 2;
  p.failed_stacks = 1;
  p.notes = {"kernel.kptr_restrict hides kernel addresses"};
  const nlohmann::json j = round_trip(p);
  EXPECT_EQ(j["chokepoint"]["lost_samples"], 3);
  EXPECT_EQ(j["chokepoint"]["truncated_stacks"], 2);
  EXPECT_EQ(j["chokepoint"]["failed_stacks"], 1);
  EXPECT_EQ(j["chokepoint"]["notes"][0], p.notes[0]);
}

TEST(Speedscope, EmptyProfileIsStillAFile) {
  const nlohmann::json j = round_trip(profile::Profile{});
  EXPECT_TRUE(j["shared"]["frames"].empty());
  EXPECT_TRUE(j["profiles"][0]["samples"].empty());
  EXPECT_EQ(j["profiles"][0]["endValue"], 0);
}

TEST(Speedscope, InvalidUtf8NamesStillSerialise) {
  profile::Profile p;
  p.stacks.push_back({{user("bad\xff\xfename")}, 1, 1});
  EXPECT_NO_THROW((void)speedscope(p).dump());
}

}  // namespace
}  // namespace chokepoint::render
