#include "collect/probes/detect.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "collect/netlink/sock_diag.h"
#include "collect/probes/memcached_probe.h"
#include "collect/probes/postgres_probe.h"
#include "collect/probes/redis_probe.h"

namespace chokepoint::collect::probes {
namespace {

std::optional<model::ServiceKind> kind_of(const std::string& comm) {
  if (comm == "postgres" || comm == "postmaster") return model::ServiceKind::kPostgres;
  if (comm == "redis-server") return model::ServiceKind::kRedis;
  if (comm == "memcached") return model::ServiceKind::kMemcached;
  if (comm == "nginx") return model::ServiceKind::kNginx;
  if (comm == "haproxy") return model::ServiceKind::kHaproxy;
  return std::nullopt;
}

// The first TCP port process pid listens on, as an address we can reach: loopback for a
// wildcard or loopback listener. Empty when none, or when it lives in another network namespace.
std::string listening_address(int pid, const procfs::ProcFs& proc) {
  auto ours = netlink::netns_inode_of(getpid(), proc.root());
  auto theirs = netlink::netns_inode_of(pid, proc.root());
  if (!ours || !theirs || *ours != *theirs) return "";
  auto fds = proc.read_fd_targets(pid);
  if (!fds) return "";
  std::set<std::uint64_t> inodes;
  for (const auto& e : *fds) {
    if (e.target.kind == procfs::FdTarget::Kind::kSocket) inodes.insert(e.target.inode);
  }
  auto diag = netlink::SockDiag::open();
  if (!diag) return "";
  auto listeners = diag->dump_tcp(netlink::SockDiag::kListenOnly);
  if (!listeners) return "";
  for (const auto& s : *listeners) {
    if (!inodes.count(s.inode)) continue;
    if (s.local_addr == "0.0.0.0" || s.local_addr.rfind("127.", 0) == 0) {
      return fmt::format("127.0.0.1:{}", s.local_port);
    }
    if (s.local_addr == "::" || s.local_addr == "::1") return fmt::format("[::1]:{}", s.local_port);
  }
  return "";
}

}  // namespace

Detected detect_services(const std::vector<int>& pids, const procfs::ProcFs& proc,
                         const std::vector<model::ServiceKind>& skip) {
  Detected out;
  std::set<model::ServiceKind> done(skip.begin(), skip.end());
  for (int pid : pids) {
    auto status = proc.read_process_status(pid);
    if (!status) continue;
    const auto kind = kind_of(status->name);
    if (!kind || done.count(*kind)) continue;
    switch (*kind) {
      case model::ServiceKind::kPostgres: {
        // The postmaster, not a backend: its parent is not a postgres process.
        auto parent = proc.read_process_status(status->ppid);
        if (parent && kind_of(parent->name) == model::ServiceKind::kPostgres) continue;
        char cwd[4096];
        const std::string link = proc.root() + "/" + std::to_string(pid) + "/cwd";
        const ssize_t n = readlink(link.c_str(), cwd, sizeof(cwd) - 1);
        struct stat st {};
        if (n <= 0 || ::stat((proc.root() + "/" + std::to_string(pid)).c_str(), &st) != 0) {
          out.notes.push_back(
              fmt::format("postgres pid {}: its data directory could not be read; "
                          "pass --pg",
                          pid));
          continue;
        }
        const std::string data_dir(cwd, static_cast<std::size_t>(n));
        passwd* pw = getpwuid(st.st_uid);
        const std::string user = pw ? pw->pw_name : std::to_string(st.st_uid);
        auto conninfo = conninfo_from_postmaster_pid(data_dir, user);
        if (!conninfo) {
          out.notes.push_back(fmt::format("postgres pid {}: {}", pid, conninfo.error().message));
          continue;
        }
        std::optional<OsUser> as;
        if (geteuid() == 0 && st.st_uid != 0) as = OsUser{st.st_uid, st.st_gid, user};
        out.probes.push_back(make_postgres_probe(
            *conninfo,
            fmt::format("found from {}/postmaster.pid{}", data_dir,
                        as ? ", connected as " + user + " (peer authentication)" : ""),
            as));
        done.insert(*kind);
        break;
      }
      case model::ServiceKind::kRedis:
      case model::ServiceKind::kMemcached: {
        const std::string addr = listening_address(pid, proc);
        if (addr.empty()) {
          out.notes.push_back(fmt::format("{} pid {}: no TCP listener reachable from here; pass {}",
                                          model::service_kind_name(*kind), pid,
                                          *kind == model::ServiceKind::kRedis
                                              ? "--redis HOST:PORT or a socket path"
                                              : "--memcached HOST:PORT"));
          continue;
        }
        auto p = *kind == model::ServiceKind::kRedis ? make_redis_probe(addr)
                                                     : make_memcached_probe(addr);
        if (p) out.probes.push_back(std::move(*p));
        done.insert(*kind);
        break;
      }
      case model::ServiceKind::kNginx:
        out.notes.push_back(
            "nginx: pass --nginx-status URL (a location with stub_status) to read "
            "its connection states");
        done.insert(*kind);
        break;
      case model::ServiceKind::kHaproxy:
        out.notes.push_back(
            "haproxy: pass --haproxy-stats with its stats socket or stats page to "
            "read its queues");
        done.insert(*kind);
        break;
    }
  }
  return out;
}

}  // namespace chokepoint::collect::probes
