// Over 600 lines for one class: TopScreen, whose keys all act on one state (the frame, its rows,
// the selection, filter, panel, pager and the P profile's thread); split by key, each part would
// take the whole state.
#include "tui/top_screen.h"

#include <curses.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <clocale>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "render/diagnosis_report.h"
#include "render/stacks_report.h"
#include "stacks/capture.h"
#include "symbolize/symbolizer.h"
#include "util/escape.h"
#include "util/fatal.h"

namespace chokepoint::tui {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPairVerdict = 1;
constexpr int kPairNone = 2;
constexpr int kPairColumns = 3;
constexpr int kPairKeys = 4;
constexpr int kKeyEscape = 27;
constexpr int kPollMs = 100;
constexpr std::size_t kJumpFrames = 10;

// The longest prefix of s that fills at most `columns` cells (one cell per UTF-8 character;
// s is already terminal_text, so it holds no control characters).
std::string_view clip(std::string_view s, int columns) {
  int cells = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0U) != 0x80U) {
      if (cells == columns) return s.substr(0, i);
      ++cells;
    }
  }
  return s;
}

void put_line(int y, std::string_view text, attr_t attrs = A_NORMAL) {
  if (y >= LINES) return;
  const std::string line(clip(text, COLS));
  if (attrs != A_NORMAL) attron(attrs);
  mvaddstr(y, 0, line.c_str());
  if (attrs != A_NORMAL) {
    // Fill the rest of the line so a highlighted row spans the screen.
    for (int x = getcurx(stdscr); x < COLS && getcury(stdscr) == y; ++x) addch(' ');
    attroff(attrs);
  }
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from < text.size()) {
    const auto nl = text.find('\n', from);
    if (nl == std::string::npos) {
      out.push_back(text.substr(from));
      break;
    }
    out.push_back(text.substr(from, nl - from));
    from = nl + 1;
  }
  return out;
}

bool contains_folded(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

// The stacks now of a process's threads, or of one of them (tid != 0), as `chokepoint stacks`
// prints them, or the error.
std::vector<std::string> stacks_lines(int pid, int tid) {
  auto symbolizer = symbolize::Symbolizer::create();
  if (!symbolizer) return {"error: " + symbolizer.error().message};
  stacks::CaptureOptions options;
  if (tid != 0) options.tid = tid;
  auto dump = stacks::capture_stacks(pid, options, **symbolizer);
  if (!dump) {
    std::vector<std::string> out = {
        fmt::format("error: stacks of pid {}: {}", pid, util::terminal_text(dump.error().message))};
    if (!dump.error().hint.empty()) out.push_back("hint: " + dump.error().hint);
    return out;
  }
  return split_lines(render::stacks_text(*dump));
}

class TopScreen {
 public:
  TopScreen(const TopScreenSource& source, const TopScreenOptions& options)
      : source_(source), options_(options) {}
  ~TopScreen() { end_profile(); }
  TopScreen(const TopScreen&) = delete;
  TopScreen& operator=(const TopScreen&) = delete;

  int run(const std::function<bool()>& stop) {
    if (replaying()) load_replay(0);
    Clock::time_point next_step = Clock::now() + interval();
    bool dirty = true;
    while (!stop()) {
      if (replaying()) {
        if (!paused_ && Clock::now() >= next_step) {
          if (index_ + 1 < source_.replay_count) {
            load_replay(index_ + 1);
            dirty = true;
          }
          next_step = Clock::now() + interval();
        }
      } else if (source_.poll_live) {
        if (auto f = source_.poll_live()) {
          frame_ = std::move(*f);
          rebuild();
          dirty = true;
        }
      }
      if (profiling_ && profile_done_.load()) {
        pager_ = end_profile();
        dirty = true;
      }
      if (dirty) draw();
      dirty = false;
      const int ch = getch();
      if (ch == ERR) continue;
      dirty = true;
      if (!pager_.empty()) {
        if (!pager_key(ch)) continue;
        pager_.clear();
        end_profile();  // closed while it ran: cancelled
        continue;
      }
      if (editing_) {
        filter_key(ch);
        continue;
      }
      if (panel_ && panel_key(ch)) continue;
      if (ch == 'q' || ch == 'Q') break;
      if (ch == ' ' && replaying()) {
        paused_ = !paused_;
        next_step = Clock::now() + interval();
      } else if ((ch == KEY_LEFT || ch == KEY_RIGHT || ch == '[' || ch == ']') && replaying()) {
        // Step one frame, or jump kJumpFrames.
        const std::size_t by = (ch == '[' || ch == ']') ? kJumpFrames : 1;
        const std::size_t last = source_.replay_count - 1;
        if (ch == KEY_LEFT || ch == '[') load_replay(index_ - std::min(index_, by));
        if (ch == KEY_RIGHT || ch == ']') load_replay(std::min(last, index_ + by));
        next_step = Clock::now() + interval();
      } else {
        main_key(ch);
      }
    }
    return 0;
  }

 private:
  bool replaying() const { return source_.replay_count > 0; }
  std::chrono::milliseconds interval() const {
    return std::chrono::milliseconds(source_.interval_ns / 1'000'000);
  }

  void load_replay(std::size_t i) {
    index_ = i;
    frame_ = source_.replay_frame(i);
    rebuild();
  }

  // The frame's rows under the sort, then the filter and the thread toggle.
  void rebuild() {
    if (!frame_) return;
    // The selected row by (pid, tid, thread): a process row and its "more threads" line share
    // pid and tid 0 (the selection jumped to the latter at every new frame).
    std::optional<std::tuple<int, int, bool>> selected;
    if (selection_ < visible_.size()) {
      const auto& r = lines_.rows[visible_[selection_]];
      selected = std::make_tuple(r.pid, r.tid, r.thread);
    }
    lines_ = render::top_frame_lines(frame_->observation, frame_->diagnosis, frame_->info,
                                     options_.frame);
    visible_.clear();
    const auto& rows = lines_.rows;
    for (std::size_t i = 0; i < rows.size();) {
      std::size_t end = i + 1;
      while (end < rows.size() && rows[end].thread) ++end;
      bool match = filter_.empty();
      for (std::size_t k = i; k < end && !match; ++k)
        match = contains_folded(rows[k].name, filter_);
      if (match) {
        for (std::size_t k = i; k < end; ++k) {
          if (rows[k].thread && !threads_) break;
          visible_.push_back(k);
        }
      }
      i = end;
    }
    selection_ = 0;
    for (std::size_t v = 0; v < visible_.size(); ++v) {
      const auto& r = rows[visible_[v]];
      if (selected == std::make_tuple(r.pid, r.tid, r.thread)) {
        selection_ = v;
        break;
      }
    }
  }

  std::optional<std::pair<int, int>> selected_key() const {
    if (selection_ >= visible_.size()) return std::nullopt;
    const auto& r = lines_.rows[visible_[selection_]];
    return std::make_pair(r.pid, r.tid);
  }

  void main_key(int ch) {
    const int page = std::max(1, LINES - rows_top_);
    switch (ch) {
      case 'c':
        sort(render::TopSort::kCpu);
        break;
      case 'r':
        sort(render::TopSort::kRunQueue);
        break;
      case 'd':
        sort(render::TopSort::kDisk);
        break;
      case 'm':
        sort(render::TopSort::kRss);
        break;
      case 'p':
        sort(render::TopSort::kPid);
        break;
      case 'n':
        sort(render::TopSort::kName);
        break;
      case 'i':
        open_panel(render::TopPanel::kDisks);
        break;
      case 'o':
        open_panel(render::TopPanel::kConnections);
        break;
      case 'l':
        open_panel(render::TopPanel::kLocks);
        break;
      case 't':
        threads_ = !threads_;
        rebuild();
        break;
      case '/':
        editing_ = true;
        edit_ = filter_;
        break;
      case kKeyEscape:
        filter_.clear();
        rebuild();
        break;
      case 's':
        if (auto key = selected_key()) {
          // A recording's pids are gone or belong to other processes by now.
          pager_ = replaying() ? std::vector<std::string>{"stacks are read from a live process: "
                                                          "this frame comes from a recording"}
                               : stacks_lines(key->first, key->second);
          pager_title_ =
              fmt::format("stacks of pid {}{} (q or Esc: back, arrows/j/k scroll)", key->first,
                          key->second != 0 ? fmt::format(" tid {}", key->second) : std::string());
          pager_top_ = 0;
        }
        break;
      case 'P':
        // A profile of the selected row (`p` sorts by pid).
        if (auto key = selected_key()) start_profile(key->first, key->second);
        break;
      case 'D':
        // The full diagnose report of the frame's window (`d` sorts by disk).
        if (!frame_) break;
        pager_ = split_lines(render::diagnosis_text(frame_->observation, frame_->diagnosis));
        pager_title_ = fmt::format("diagnosis of frame {} (q or Esc: back, arrows/j/k scroll)",
                                   frame_->info.frame);
        pager_top_ = 0;
        break;
      case KEY_UP:
      case 'k':
        if (selection_ > 0) --selection_;
        break;
      case KEY_DOWN:
      case 'j':
        if (selection_ + 1 < visible_.size()) ++selection_;
        break;
      case KEY_PPAGE:
        selection_ -= std::min(selection_, static_cast<std::size_t>(page));
        break;
      case KEY_NPAGE:
        selection_ = std::min(selection_ + static_cast<std::size_t>(page),
                              visible_.empty() ? 0 : visible_.size() - 1);
        break;
      case KEY_HOME:
        selection_ = 0;
        break;
      case KEY_END:
        selection_ = visible_.empty() ? 0 : visible_.size() - 1;
        break;
      default:
        break;  // KEY_RESIZE and others: redraw
    }
  }

  void start_profile(int pid, int tid) {
    const double secs = static_cast<double>(source_.profile_ns) / 1e9;
    pager_title_ = fmt::format(
        "on-CPU profile of pid {}{}, {:.0f} s (q or Esc: back, arrows/j/k "
        "scroll)",
        pid, tid != 0 ? fmt::format(" tid {}", tid) : std::string(), secs);
    pager_top_ = 0;
    if (replaying() || !source_.profile) {
      pager_ = {"a profile samples a live process: this frame comes from a recording"};
      return;
    }
    pager_ = {fmt::format("sampling its on-CPU stacks for {:.0f} s (q or Esc: cancel) ...", secs)};
    profile_stop_ = false;
    profile_done_ = false;
    profiling_ = true;
    profiler_ = std::thread([this, pid, tid] {
      std::vector<std::string> lines;
      try {
        lines = split_lines(source_.profile(pid, tid, &profile_stop_));
      } catch (const std::exception& e) {  // on this thread, nothing else would catch it
        lines = {fmt::format("error: the profile failed: {}", util::terminal_text(e.what()))};
      }
      std::lock_guard lock(profile_mu_);
      profile_lines_ = std::move(lines);
      profile_done_ = true;
    });
  }

  // Ends the profile (stopping it if it still runs) and returns its lines.
  std::vector<std::string> end_profile() {
    if (!profiling_) return {};
    profile_stop_ = true;
    profiler_.join();
    profiling_ = false;
    std::lock_guard lock(profile_mu_);
    auto lines = std::move(profile_lines_);
    profile_lines_.clear();
    if (lines.empty()) lines.emplace_back("(no lines)");
    return lines;
  }

  void open_panel(render::TopPanel panel) {
    panel_ = panel;
    panel_top_ = 0;
  }

  // Keys of an open panel: its key again, Esc or q close it, arrows and j/k scroll. False for
  // the keys it leaves to the frame (sorting, replay steps).
  bool panel_key(int ch) {
    switch (ch) {
      case 'i':
      case 'o':
      case 'l': {
        const auto asked = ch == 'i'   ? render::TopPanel::kDisks
                           : ch == 'o' ? render::TopPanel::kConnections
                                       : render::TopPanel::kLocks;
        if (asked == *panel_) {
          panel_.reset();
        } else {
          open_panel(asked);
        }
        return true;
      }
      case 'q':
      case kKeyEscape:
        panel_.reset();
        return true;
      case KEY_UP:
      case 'k':
        panel_top_ = std::max(0, panel_top_ - 1);
        return true;
      case KEY_DOWN:
      case 'j':
        ++panel_top_;
        return true;
      default:
        return false;
    }
  }

  void sort(render::TopSort s) {
    options_.frame.sort = s;
    rebuild();
  }

  void filter_key(int ch) {
    if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
      filter_ = edit_;
      editing_ = false;
      rebuild();
    } else if (ch == kKeyEscape) {
      filter_.clear();
      editing_ = false;
      rebuild();
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
      if (!edit_.empty()) edit_.pop_back();
    } else if (ch >= 0x20 && ch < 0x7F && edit_.size() < 64) {
      edit_.push_back(static_cast<char>(ch));
    }
  }

  // True when the pager closes.
  bool pager_key(int ch) {
    const int page = std::max(1, LINES - 1);
    const int last = std::max(0, static_cast<int>(pager_.size()) - page);
    switch (ch) {
      case 'q':
      case 's':
      case kKeyEscape:
        return true;
      case KEY_UP:
      case 'k':
        pager_top_ = std::max(0, pager_top_ - 1);
        break;
      case KEY_DOWN:
      case 'j':
        pager_top_ = std::min(last, pager_top_ + 1);
        break;
      case KEY_PPAGE:
        pager_top_ = std::max(0, pager_top_ - page);
        break;
      case KEY_NPAGE:
      case ' ':
        pager_top_ = std::min(last, pager_top_ + page);
        break;
      default:
        break;
    }
    return false;
  }

  attr_t pair(int p) const { return options_.color ? COLOR_PAIR(p) : A_NORMAL; }
  // The column header and the pager title: coloured, or reversed without colour.
  attr_t bar() const { return options_.color ? COLOR_PAIR(kPairColumns) : A_REVERSE; }

  void draw() {
    erase();
    if (!pager_.empty()) {
      draw_pager();
    } else {
      draw_frame();
    }
    refresh();
  }

  void draw_pager() {
    put_line(0, pager_title_, bar());
    for (int y = 1; y < LINES; ++y) {
      const auto i = static_cast<std::size_t>(pager_top_ + y - 1);
      if (i >= pager_.size()) break;
      put_line(y, pager_[i]);
    }
  }

  void draw_frame() {
    int y = 0;
    if (!frame_) {
      put_line(0, source_.waiting);
      put_line(2, "q quit");
      return;
    }
    const auto header = split_lines(lines_.header);
    const bool none = frame_->diagnosis.verdict == analysis::Verdict::kNone;
    for (std::size_t i = 0; i < header.size(); ++i) {
      attr_t a = A_NORMAL;
      if (i == 1) a = A_BOLD | pair(none ? kPairNone : kPairVerdict);
      put_line(y++, header[i], a);
    }
    std::string keys = fmt::format(
        "q quit  sort c r d m p n: {}  / filter{}  t threads {}  s stacks  P profile  i disks  o "
        "conns  l locks",
        render::top_sort_name(options_.frame.sort),
        filter_.empty() ? std::string() : " [" + util::terminal_text(filter_) + "]",
        threads_ ? "shown" : "collapsed");
    if (replaying()) {
      keys += fmt::format("  replay {}/{}{}  space pause  <- -> step  [ ] jump 10", index_ + 1,
                          source_.replay_count, paused_ ? " PAUSED" : "");
    }
    if (editing_)
      keys = "filter by name: " + util::terminal_text(edit_) + "_  (Enter apply, Esc clear)";
    put_line(y++, keys, pair(kPairKeys));
    if (panel_) {
      draw_panel(y);
      return;
    }
    put_line(y++, lines_.columns, bar());
    rows_top_ = y;
    const auto page = static_cast<std::size_t>(std::max(1, LINES - y));
    if (selection_ < scroll_) scroll_ = selection_;
    if (selection_ >= scroll_ + page) scroll_ = selection_ - page + 1;
    if (scroll_ >= visible_.size()) scroll_ = 0;
    for (std::size_t v = scroll_; v < visible_.size() && y < LINES; ++v) {
      put_line(y++, lines_.rows[visible_[v]].text, v == selection_ ? A_REVERSE : A_NORMAL);
    }
    if (visible_.empty())
      put_line(y, filter_.empty() ? "(no processes)" : "(no name matches the filter)");
  }

  void draw_panel(int y) {
    const auto lines = render::top_panel_lines(frame_->observation, *panel_);
    put_line(y++,
             fmt::format("{} ({} again, q or Esc: back; arrows/j/k scroll)",
                         render::top_panel_name(*panel_),
                         *panel_ == render::TopPanel::kDisks         ? 'i'
                         : *panel_ == render::TopPanel::kConnections ? 'o'
                                                                     : 'l'),
             bar());
    panel_top_ = std::min(panel_top_, std::max(0, static_cast<int>(lines.size()) - 1));
    for (auto i = static_cast<std::size_t>(panel_top_); i < lines.size() && y < LINES; ++i) {
      put_line(y++, lines[i]);
    }
  }

  const TopScreenSource& source_;
  TopScreenOptions options_;
  std::optional<TopScreenFrame> frame_;
  std::size_t index_ = 0;
  bool paused_ = false;
  render::TopFrameLines lines_;
  std::vector<std::size_t> visible_;  // indexes into lines_.rows
  std::size_t selection_ = 0;         // index into visible_
  std::size_t scroll_ = 0;
  int rows_top_ = 0;
  bool threads_ = true;
  std::string filter_;
  bool editing_ = false;
  std::string edit_;
  std::optional<render::TopPanel> panel_;
  int panel_top_ = 0;
  std::vector<std::string> pager_;
  std::string pager_title_;
  int pager_top_ = 0;
  // The P profile's thread: profile_lines_ (under profile_mu_) once profile_done_.
  std::thread profiler_;
  bool profiling_ = false;
  std::atomic<bool> profile_stop_{false};
  std::atomic<bool> profile_done_{false};
  std::mutex profile_mu_;
  std::vector<std::string> profile_lines_;
};

}  // namespace

int run_top_screen(const TopScreenSource& source, const TopScreenOptions& options,
                   const std::function<bool()>& stop) {
  std::setlocale(LC_ALL, "");
  // newterm, not initscr: initscr exits the process when TERM names no known terminal.
  SCREEN* terminal = newterm(nullptr, stdout, stdin);
  if (terminal == nullptr) {
    const char* term = std::getenv("TERM");
    throw util::FatalError(util::Error{
        fmt::format("cannot drive the terminal: TERM={} is not in the terminfo database",
                    util::terminal_text(term == nullptr ? "(unset)" : term)),
        "set TERM to your terminal's type (e.g. xterm-256color), or pass --batch", 0});
  }
  set_escdelay(25);
  cbreak();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  curs_set(0);
  timeout(kPollMs);
  TopScreenOptions opts = options;
  if (opts.color && has_colors()) {
    start_color();
    use_default_colors();
    init_pair(kPairVerdict, COLOR_RED, -1);
    init_pair(kPairNone, COLOR_GREEN, -1);
    init_pair(kPairColumns, COLOR_BLACK, COLOR_CYAN);
    init_pair(kPairKeys, COLOR_CYAN, -1);
  } else {
    opts.color = false;
  }
  int code = 0;
  try {
    TopScreen screen(source, opts);
    code = screen.run(stop);
  } catch (...) {
    endwin();
    delscreen(terminal);
    throw;
  }
  endwin();
  delscreen(terminal);
  return code;
}

}  // namespace chokepoint::tui
