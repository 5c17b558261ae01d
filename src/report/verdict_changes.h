#pragma once
// Why the verdict over time changed: for each column whose verdict differs from the column before
// it, what moved between the previous verdict's columns and the new verdict's columns, from the
// timeline's own data (report/timeline.h): the shares of busy time each resource took, the share
// of the threads' time that was busy, and the threads whose main state changed, grouped by
// process, thread name and the move (from on_cpu to disk), with the wait behind it (the file or
// socket). Pure: no I/O.
//
// The names and waits in the result are observed strings (hostile): the page shows them as text,
// the terminal through util::terminal_text.

#include <nlohmann/json.hpp>
#include <string>

namespace chokepoint::report {

struct ChangeOptions {
  // The sides of a change: before it, the previous verdict's whole run (the columns since the
  // change before); after it, the new verdict's whole run (to the next change). A run shorter
  // than this is the change still under way (cpu, one column of cpu of another kind or of lock,
  // then disk): the side before reaches back over it into the runs before it, until it holds this
  // many columns or meets the new verdict. So a change that built up over several columns (the
  // threads moved a column or two before the verdict did) is compared with the verdict it left.
  int settled_columns = 3;
  // A share moved when it changed by at least this much (0.05: 5 points).
  double min_share_move = 0.05;
  int max_resources = 3;      // shares named per change, largest move first
  int max_thread_groups = 3;  // thread groups named per change, most threads first
};

// The changes of a finished timeline (TimelineBuilder::finish's JSON), in time order:
// [{"column", "at_s", "from", "to" (verdict labels as the page writes them: "disk (kind)", "no
// thread seen"), "before_s": [from, to), "after_s": [from, to) (the columns compared, s from the
// first tick, as ChangeOptions::settled_columns says), "busy": [before, after] (the busy share of
// thread time: all but idle and sleep), "moved": [{"resource", "before", "after"}] (shares of busy
// time), "threads": [{"pid", "process", "names" ("lab-worker", "writer-1..4"), "count", "from",
// "to" (state names; "not seen" for a thread that was not there), "from_detail", "to_detail" (the
// wait most of them were in, "" for none)}], "more_threads" (threads that moved in groups not
// named), "text" (all of it in one sentence)}].
nlohmann::json verdict_changes(const nlohmann::json& timeline, const ChangeOptions& options = {});

// A verdict of the timeline's "verdicts" as the page labels it.
std::string verdict_label(const nlohmann::json& verdict);

// The verdict over time of a finished timeline (TimelineBuilder::finish's JSON, its "changes"
// included), for replay --json: {"column_s", "columns" (how many), "first" (the first column's
// label), "window_from_s" (where the timeline starts in the recording: the changes' times are
// from it), "changes" (the timeline's, as verdict_changes gives them)}. null for a timeline with
// no column, or for no timeline (null).
nlohmann::json verdict_over_time_json(const nlohmann::json& timeline, double window_from_s = 0);

// The same for the terminal (replay): a heading with the columns and the first verdict, then the
// first 12 changes (as many as the page lists), each with its "text", the sentence the page
// shows; times in s from the recording's start (window_from_s added); observed strings pass
// through util::terminal_text. "" for a timeline with no column.
std::string verdict_over_time_text(const nlohmann::json& timeline, double window_from_s = 0);

}  // namespace chokepoint::report
