#include "lab/lab.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "lab/memory_cgroup.h"
#include "lab/options.h"
#include "lab/proxy.h"
#include "lab/scenarios.h"
#include "lab/server.h"
#include "util/fatal.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {
namespace {

// The data dir: either the user's (kept) or a fresh temp dir (removed on exit).
class DataDir {
 public:
  static util::Result<DataDir> open(const std::string& requested) {
    if (!requested.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(requested, ec);
      if (ec || access(requested.c_str(), W_OK) != 0) {
        return util::Error{
            "cannot create data dir " + requested + (ec ? ": " + ec.message() : ": not writable"),
            "pass a writable directory with --data-dir", 0};
      }
      return DataDir(requested, false);
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/chokepoint-lab." +
                        std::to_string(getpid()) + ".XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      return util::errno_error("cannot create a temp data dir " + templ,
                               "set TMPDIR to a writable directory or pass --data-dir");
    }
    return DataDir(templ, true);
  }
  DataDir(DataDir&& o) noexcept : path_(std::move(o.path_)), remove_(o.remove_) {
    o.remove_ = false;
  }
  DataDir(const DataDir&) = delete;
  ~DataDir() {
    if (!remove_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  DataDir(std::string path, bool remove) : path_(std::move(path)), remove_(remove) {}
  std::string path_;
  bool remove_;
};

int fail(const util::Error& e, int code) {
  util::print_error(e);
  return code;
}

}  // namespace

int run(int argc, char** argv) {
  auto parsed = parse_options(argc, argv);
  if (!parsed) return fail(parsed.error(), util::kExitUsage);
  if (parsed->help_text) {
    std::fputs(parsed->help_text->c_str(), stdout);
    return util::kExitOk;
  }
  const Options& o = parsed->options;

  // Signals go to a signalfd read by this thread only; block them before any thread starts so
  // every thread inherits the mask (signalfd(2)). SIGPIPE is ignored: writes use MSG_NOSIGNAL.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  util::ScopedFd sig_fd(signalfd(-1, &mask, SFD_CLOEXEC));
  if (!sig_fd.valid()) return fail(util::errno_error("signalfd"), util::kExitRuntime);

  // The cgroup first: memory charged before the move stays outside the limit.
  std::optional<MemoryCgroup> cgroup;
  if (o.role == Role::kLab && o.scenario == Scenario::kPaging) {
    auto cg = MemoryCgroup::create(o.memory_limit_bytes);
    if (!cg) return fail(cg.error(), util::kExitRuntime);
    cgroup.emplace(std::move(*cg));
  }
  auto data_dir = DataDir::open(o.data_dir);
  if (!data_dir) return fail(data_dir.error(), util::kExitRuntime);

  int code = util::kExitOk;
  {
    // The proxy is a server of its own (one event loop, no handler); the rest share Server.
    const bool proxy = o.role == Role::kLab && o.scenario == Scenario::kProxy;
    std::unique_ptr<Handler> handler;
    if (!proxy) {
      auto h = make_handler(o, data_dir->path());
      if (!h) return fail(h.error(), util::kExitRuntime);
      handler = std::move(*h);
    }
    auto server = proxy ? start_proxy(o) : Server::start(o, *handler);
    if (!server) return fail(server.error(), util::kExitRuntime);

    std::printf("chokepoint-lab listening on %s:%u scenario=%s model=%s workers=%d pid=%d\n",
                o.bind_address.c_str(), static_cast<unsigned>((*server)->port()),
                o.role == Role::kUpstream ? "upstream-server" : scenario_name(o.scenario),
                model_name(o.model), (*server)->workers(), static_cast<int>(getpid()));
    std::fflush(stdout);

    for (;;) {
      signalfd_siginfo info{};
      ssize_t n = read(sig_fd.get(), &info, sizeof(info));
      if (n == sizeof(info)) break;
      if (n < 0 && errno != EINTR) {
        code = fail(util::errno_error("reading the signalfd"), util::kExitRuntime);
        break;
      }
    }
    (*server)->stop();
  }
  return code;
}

}  // namespace chokepoint::lab
