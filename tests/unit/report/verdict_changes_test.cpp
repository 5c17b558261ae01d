#include "report/verdict_changes.h"

#include <gtest/gtest.h>

namespace chokepoint::report {
namespace {

using nlohmann::json;

constexpr int kOnCpu = 0, kDisk = 2, kIdle = 7;

json verdict(const std::string& v, const std::string& kind) {
  return {{"verdict", v}, {"kind", kind}, {"share", 0.5}, {"share_text", "50% of busy time"}};
}

// A thread of process 10 (svc) with its heat-map runs: state, detail, count, ...
json svc_thread(int tid, const std::string& comm, json runs) {
  return {{"pid", 10}, {"tid", tid}, {"comm", comm}, {"process", "svc"}, {"runs", std::move(runs)}};
}

// Six columns of 1 s: cpu for three, disk for three. Four writer threads move from on_cpu to
// fdatasync; the loop thread from on_cpu to idle; a thread with a hostile name stays idle.
json timeline() {
  json t;
  t["column_s"] = 1.0;
  t["columns"] = {0.0, 1.0, 2.0, 3.0, 4.0, 5.0};
  t["verdicts"] = json::array();
  t["split"] = json::array();
  for (int i = 0; i < 6; ++i) {
    t["verdicts"].push_back(i < 3 ? verdict("cpu", "saturated") : verdict("disk", "sync-writes"));
    // on_cpu, cpu_wait, disk, network, lock, memory, sleep, idle
    t["split"].push_back(i < 3 ? json{0.6, 0.1, 0.05, 0, 0, 0, 0, 0.25}
                               : json{0.1, 0.0, 0.6, 0, 0, 0, 0, 0.27});
  }
  t["details"] = {"fdatasync /var/lib/x", "epoll_wait"};
  t["threads"] = json::array();
  for (int w = 1; w <= 4; ++w) {
    t["threads"].push_back(
        svc_thread(10 + w, "writer-" + std::to_string(w), {kOnCpu, -1, 3, kDisk, 0, 3}));
  }
  t["threads"].push_back(svc_thread(10, "loop", {kOnCpu, -1, 3, kIdle, 1, 3}));
  t["threads"].push_back(svc_thread(20, "<img src=x>", {kIdle, 1, 6}));
  return t;
}

TEST(VerdictChanges, SaysWhichSharesAndThreadsMoved) {
  const json changes = verdict_changes(timeline());
  ASSERT_EQ(changes.size(), 1u);
  const json& c = changes[0];
  EXPECT_EQ(c["column"], 3);
  EXPECT_EQ(c["from"], "cpu (saturated)");
  EXPECT_EQ(c["to"], "disk (sync-writes)");
  EXPECT_EQ(c["before_s"], json({0.0, 3.0}));
  EXPECT_EQ(c["after_s"], json({3.0, 6.0}));
  // Busy time: 0.75 of the threads' time before, 0.73 after: not a move of 5 points.
  ASSERT_EQ(c["moved"].size(), 3u);
  EXPECT_EQ(c["moved"][0]["resource"], "disk");
  EXPECT_NEAR(c["moved"][0]["before"].get<double>(), 0.05 / 0.75, 1e-9);
  EXPECT_NEAR(c["moved"][0]["after"].get<double>(), 0.6 / 0.73, 1e-9);
  EXPECT_EQ(c["moved"][1]["resource"], "on_cpu");
  EXPECT_EQ(c["moved"][2]["resource"], "cpu_wait");
  ASSERT_EQ(c["threads"].size(), 2u);
  EXPECT_EQ(c["threads"][0]["names"], "writer-1..4");
  EXPECT_EQ(c["threads"][0]["count"], 4);
  EXPECT_EQ(c["threads"][0]["to_detail"], "fdatasync /var/lib/x");
  EXPECT_EQ(c["threads"][1]["names"], "loop");
  EXPECT_EQ(c["more_threads"], 0);
  EXPECT_EQ(c["text"],
            "disk 7% -> 82%, on_cpu 80% -> 14%, cpu_wait 13% -> 0% of busy time; "
            "4 threads writer-1..4 of pid 10 (svc) from on_cpu to disk (fdatasync /var/lib/x); "
            "1 thread loop of pid 10 (svc) from on_cpu to idle");
}

TEST(VerdictChanges, ABriefVerdictIsComparedWithItsOwnColumnsAndNamesTheRest) {
  json t = timeline();
  // A one-column flip back to cpu at the end: the disk run before it (two columns) is not
  // stretched into the cpu run before that (the new verdict's own).
  t["verdicts"][5] = verdict("cpu", "saturated");
  ChangeOptions o;
  o.max_thread_groups = 1;
  const json changes = verdict_changes(t, o);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0]["before_s"], json({0.0, 3.0}));
  EXPECT_EQ(changes[0]["after_s"], json({3.0, 5.0}));
  EXPECT_EQ(changes[1]["before_s"], json({3.0, 5.0}));
  EXPECT_EQ(changes[1]["after_s"], json({5.0, 6.0}));
  EXPECT_EQ(changes[0]["more_threads"], 1);
  EXPECT_NE(changes[0]["text"].get<std::string>().find("and 1 more thread changed state"),
            std::string::npos);
  // Nothing moved between the two sides of the flip: it says so.
  EXPECT_NE(changes[1]["text"].get<std::string>().find("a close call"), std::string::npos)
      << changes[1]["text"];
}

// `columns` columns of 1 s: cpu (saturated) up to `disk_from`, disk from it on, with a split of
// the loop on the CPU before and the writers in disk after `writers_from`; four writers idle up to
// `writers_from` and in fdatasync from it, the loop on the CPU up to `disk_from`.
json built_up(int columns, int writers_from, int disk_from) {
  json t;
  t["column_s"] = 1.0;
  t["columns"] = json::array();
  t["verdicts"] = json::array();
  t["split"] = json::array();
  for (int i = 0; i < columns; ++i) {
    t["columns"].push_back(static_cast<double>(i));
    t["verdicts"].push_back(i < disk_from ? verdict("cpu", "saturated")
                                          : verdict("disk", "sync-writes"));
    const double cpu = i < disk_from ? 0.2 : 0.0, disk = i < writers_from ? 0.0 : 0.6;
    t["split"].push_back(json{cpu, 0, disk, 0, 0, 0, 0, 1.0 - cpu - disk});
  }
  t["details"] = {"fdatasync /var/lib/x"};
  t["threads"] = json::array();
  for (int w = 1; w <= 4; ++w) {
    t["threads"].push_back(svc_thread(10 + w, "writer-" + std::to_string(w),
                                      {kIdle, -1, writers_from, kDisk, 0, columns - writers_from}));
  }
  t["threads"].push_back(
      svc_thread(10, "loop", {kOnCpu, -1, disk_from, kIdle, -1, columns - disk_from}));
  return t;
}

// The writers went into fdatasync two columns before the verdict turned to disk (the loop still
// held the CPU): compared with the cpu verdict's whole run, they moved. Three columns before the
// change (two of them already in disk) said they had not.
TEST(VerdictChanges, AChangeThatBuiltUpIsComparedWithThePreviousVerdictsWholeRun) {
  const json changes = verdict_changes(built_up(9, 4, 6));
  ASSERT_EQ(changes.size(), 1u);
  const json& c = changes[0];
  EXPECT_EQ(c["before_s"], json({0.0, 6.0}));
  EXPECT_EQ(c["after_s"], json({6.0, 9.0}));
  ASSERT_FALSE(c["threads"].empty()) << c.dump();
  EXPECT_EQ(c["threads"][0]["names"], "writer-1..4");
  EXPECT_EQ(c["threads"][0]["from"], "idle");
  EXPECT_EQ(c["threads"][0]["to"], "disk");
  EXPECT_NE(c["text"].get<std::string>().find(
                "4 threads writer-1..4 of pid 10 (svc) from idle to disk (fdatasync /var/lib/x)"),
            std::string::npos)
      << c["text"];
}

// The flake report_linked_browser_test met: cpu, then one column of cpu of another kind in which
// the writers were already in fdatasync, then disk. The change into disk reaches back over that
// column to the cpu run: the writers are named, not "a close call".
TEST(VerdictChanges, AOneColumnVerdictBetweenIsTheChangeUnderWay) {
  json t = built_up(8, 4, 5);
  t["verdicts"][4] = verdict("cpu", "throttled");
  const json changes = verdict_changes(t);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0]["to"], "cpu (throttled)");
  const json& c = changes[1];
  EXPECT_EQ(c["from"], "cpu (throttled)");
  EXPECT_EQ(c["to"], "disk (sync-writes)");
  EXPECT_EQ(c["before_s"], json({0.0, 5.0}));
  EXPECT_EQ(c["after_s"], json({5.0, 8.0}));
  EXPECT_EQ(c["text"].get<std::string>().find("a close call"), std::string::npos) << c["text"];
  EXPECT_NE(c["text"].get<std::string>().find("writer-1..4 of pid 10 (svc) from idle to disk"),
            std::string::npos)
      << c["text"];
  // Settled at one column, the side before is that column alone: the close call it said.
  ChangeOptions o;
  o.settled_columns = 1;
  const json narrow = verdict_changes(t, o);
  ASSERT_EQ(narrow.size(), 2u);
  EXPECT_EQ(narrow[1]["before_s"], json({4.0, 5.0}));
  EXPECT_EQ(narrow[1]["threads"].size(), 1u);  // the loop alone: on_cpu to idle
}

// Threads that started in the last column before the change, already in disk, started there: the
// before side's columns they were absent from outnumber the one they were seen in. (The rule
// before took their one column as their state before, so they "did not move": the flake of
// VerdictChanges.CpuLabThenDiskLabSaysWhatMoved, where the disk lab's workers named no move.)
TEST(VerdictChanges, ThreadsThatStartedJustBeforeTheChangeStartedThere) {
  json t = timeline();
  for (int w = 1; w <= 2; ++w) {
    t["threads"].push_back(
        svc_thread(40 + w, "late-" + std::to_string(w), {-1, -1, 2, kDisk, 0, 4}));
  }
  // A thread seen in one column of three on a side, idle on the other, is no start.
  t["threads"].push_back(svc_thread(50, "rare", {-1, -1, 2, kIdle, 1, 4}));
  const json changes = verdict_changes(t);
  ASSERT_EQ(changes.size(), 1u);
  const json& threads = changes[0]["threads"];
  bool late = false;
  for (const json& g : threads) {
    EXPECT_NE(g["names"], "rare") << g.dump();
    if (g["names"] != "late-1..2") continue;
    late = true;
    EXPECT_EQ(g["count"], 2);
    EXPECT_EQ(g["from"], "not seen");
    EXPECT_EQ(g["to"], "disk");
    EXPECT_EQ(g["to_detail"], "fdatasync /var/lib/x");
  }
  EXPECT_TRUE(late) << threads.dump(1);
  EXPECT_NE(changes[0]["text"].get<std::string>().find(
                "2 threads late-1..2 of pid 10 (svc) from not seen to disk (fdatasync /var/lib/x)"),
            std::string::npos)
      << changes[0]["text"];
}

TEST(VerdictChanges, NoChangeNoColumnsNoThreads) {
  EXPECT_TRUE(verdict_changes(json::object()).empty());
  json t = timeline();
  for (auto& v : t["verdicts"]) v = verdict("cpu", "saturated");
  EXPECT_TRUE(verdict_changes(t).empty());
  // A column where no thread was seen has its own label.
  t["verdicts"][2] = nullptr;
  const json changes = verdict_changes(t);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0]["to"], "no thread seen");
}

}  // namespace
}  // namespace chokepoint::report
