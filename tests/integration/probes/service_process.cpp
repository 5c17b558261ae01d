#include "integration/probes/service_process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "util/scoped_fd.h"

namespace chokepoint::test_support {

std::uint16_t free_loopback_port() {
  util::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 0;
  socklen_t len = sizeof(a);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool wait_for_port(std::uint16_t port, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    util::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool wait_for_path(const std::string& path, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int run_command(const std::vector<std::string>& argv, int timeout_ms) {
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  auto bg = Background::start(argv.front(), args);
  if (!bg) return -1;
  auto rc = bg->wait(timeout_ms);
  return rc ? *rc : -1;
}

bool send_and_drain(std::uint16_t port, const std::string& bytes, int timeout_ms) {
  util::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
  // The reader drains replies while the writer sends, so neither side's buffer fills up.
  std::thread reader([&] {
    char buf[65536];
    while (::recv(fd.get(), buf, sizeof(buf), 0) > 0) {
    }
  });
  std::size_t sent = 0;
  bool ok = true;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ok = false;
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  reader.join();
  return ok;
}

std::string find_program(const std::vector<std::string>& candidates) {
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

namespace {
const std::vector<std::string> kAsPostgres = {"setpriv", "--reuid=postgres", "--regid=postgres",
                                              "--clear-groups"};
}  // namespace

int PostgresServer::run_as_postgres(std::vector<std::string> argv, int timeout_ms) const {
  argv.insert(argv.begin(), kAsPostgres.begin(), kAsPostgres.end());
  return run_command(argv, timeout_ms);
}

std::string PostgresServer::conninfo() const {
  return "host=" + dir.path + " port=5432 user=postgres dbname=postgres";
}

bool PostgresServer::start(const std::string& auth, bool fsync,
                           const std::vector<std::string>& settings) {
  const std::string bin = "/usr/lib/postgresql/15/bin/";
  if (::access((bin + "postgres").c_str(), X_OK) != 0) {
    ADD_FAILURE() << "PostgreSQL 15 is not installed (scripts/setup installs postgresql-15)";
    return false;
  }
  passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr || ::chown(dir.path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    ADD_FAILURE() << "no postgres user (the postgresql package creates it)";
    return false;
  }
  if (run_as_postgres({bin + "initdb", "-D", data(), "-A", auth, "-U", "postgres", "--no-sync"},
                      60'000) != 0) {
    ADD_FAILURE() << "initdb failed";
    return false;
  }
  std::vector<std::string> args = kAsPostgres;
  for (const std::string& a :
       {bin + "postgres", std::string("-D"), data(), std::string("-k"), dir.path, std::string("-c"),
        std::string("listen_addresses="), std::string("-c"),
        std::string(fsync ? "fsync=on" : "fsync=off"), std::string("-p"), std::string("5432")}) {
    args.push_back(a);
  }
  for (const auto& setting : settings) {
    args.push_back("-c");
    args.push_back(setting);
  }
  auto bg = Background::start(args.front(), {args.begin() + 1, args.end()});
  if (!bg) {
    ADD_FAILURE() << bg.error().message;
    return false;
  }
  server_.emplace(std::move(*bg));
  // The socket appears before recovery ends: wait for the server to take connections.
  for (int i = 0; i < 400; ++i) {
    if (run_as_postgres({"pg_isready", "-q", "-h", dir.path, "-p", "5432"}, 5'000) == 0) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "postgres did not accept connections within 20 s";
  return false;
}

PostgresServer::~PostgresServer() {
  if (server_) {
    ::kill(server_->pid(), SIGINT);  // fast shutdown: the backends end too
    (void)server_->wait(20'000);
  }
}

}  // namespace chokepoint::test_support
