// A hand-off to a thread in disk, on storage that really blocks: the lab's pipeline with
// --stage-work fsync, its one stage thread appending and fdatasyncing a record per job on an ext4
// that the test makes on a loop device and mounts in a temp dir, with the lab in a cgroup that
// throttles that device to 20 write IOs per second: io.max (`wiops=`) where a cgroup v2 mount has
// the io controller (found at run time in its cgroup.controllers), else cgroup v1 blkio's
// blkio.throttle.write_iops_device. (On the CI VM blkio is bound to the v1 hierarchy, so the v2
// mount lists no io and the v1 throttle is used.) Each fdatasync then waits tens of milliseconds
// for the device (this VM's own disk absorbs fsyncs in a write-back cache), the request threads
// wait on their reply semaphores for the stage, and the verdict is disk with the chain from the
// waiters to the stage thread in the evidence (docs/verdicts/disk.md). Skips only when loop
// devices or both throttles are absent. About 8 s.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/lab_process.h"

namespace chokepoint {
namespace {

namespace fs = std::filesystem;
using test_support::Background;
using test_support::LabProcess;
using test_support::run_chokepoint;
using test_support::run_to_exit;

constexpr const char* kBlkio = "/sys/fs/cgroup/blkio";
constexpr int kWriteIops = 20;

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// Runs a system tool to completion (bounded); its stdout, or nullopt with the failure recorded.
std::optional<std::string> run_tool(const std::string& binary,
                                    const std::vector<std::string>& args) {
  auto r = run_to_exit(args, binary, std::chrono::seconds(20));
  if (!r) {
    ADD_FAILURE() << binary << ": " << r.error().message;
    return std::nullopt;
  }
  if (r->exit_code != 0) {
    ADD_FAILURE() << binary << " exited " << r->exit_code << ": " << r->stderr_text;
    return std::nullopt;
  }
  return r->stdout_text;
}

// The cgroup v2 mount whose controllers include io (io.max), or "" when none has it: io is listed
// in a v2 mount's cgroup.controllers only while no v1 hierarchy holds blkio.
std::string v2_io_mount() {
  std::ifstream mounts("/proc/self/mounts");
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string device, dir, type;
    if (!(fields >> device >> dir >> type) || type != "cgroup2") continue;
    std::ifstream controllers(dir + "/cgroup.controllers");
    for (std::string c; controllers >> c;) {
      if (c == "io") return dir;
    }
  }
  return "";
}

// A small ext4 on a loop device, mounted in a temp dir, and a cgroup that throttles writes to
// that device (io.max on v2, else blkio on v1). Everything it set up is undone in the destructor,
// on every path: the cgroup's tasks moved back to the root, unmounted, the loop device detached,
// the cgroup and the temp dir removed. Declare it before the processes it holds, so that they are
// gone first.
class ThrottledDisk {
 public:
  ThrottledDisk() = default;
  ThrottledDisk(const ThrottledDisk&) = delete;
  ThrottledDisk& operator=(const ThrottledDisk&) = delete;
  ~ThrottledDisk() { tear_down(); }

  // Why the machine cannot do it (loop devices, or both io.max and blkio throttling absent), or
  // "".
  static std::string missing() {
    if (!fs::exists("/dev/loop-control")) return "no loop devices (/dev/loop-control is absent)";
    if (v2_io_mount().empty() &&
        !fs::exists(std::string(kBlkio) + "/blkio.throttle.write_iops_device")) {
      return "no cgroup v2 mount with the io controller, and no cgroup v1 blkio throttling (" +
             std::string(kBlkio) + "/blkio.throttle.write_iops_device is absent)";
    }
    return "";
  }

  // Which throttle set_up used: "io.max" or "blkio".
  const char* throttle() const { return io_root_.empty() ? "blkio" : "io.max"; }

  // Sets it all up; false (with the failure recorded) when a step fails.
  bool set_up() {
    char tmpl[] = "/tmp/chokepoint-throttled-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    const std::string image = dir_ + "/disk.img";
    { std::ofstream create(image); }
    std::error_code ec;
    fs::resize_file(image, 64ull << 20, ec);
    if (ec) {
      ADD_FAILURE() << "cannot size " << image << ": " << ec.message();
      return false;
    }
    auto loop = run_tool("/usr/sbin/losetup", {"--find", "--show", image});
    if (!loop) return false;
    loop_ = loop->substr(0, loop->find('\n'));
    if (!run_tool("/usr/sbin/mkfs.ext4", {"-q", loop_})) return false;
    mount_ = dir_ + "/mnt";
    fs::create_directory(mount_, ec);
    if (::mount(loop_.c_str(), mount_.c_str(), "ext4", 0, nullptr) != 0) {
      ADD_FAILURE() << "mount " << loop_ << " failed: " << std::strerror(errno);
      mount_.clear();
      return false;
    }
    mounted_ = true;
    struct stat st {};
    if (::stat(loop_.c_str(), &st) != 0) {
      ADD_FAILURE() << "stat " << loop_ << " failed";
      return false;
    }
    const std::string device =
        std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
    io_root_ = v2_io_mount();
    if (!io_root_.empty()) {
      // io.max is set in a child of a cgroup whose subtree has the io controller on.
      std::ifstream on(io_root_ + "/cgroup.subtree_control");
      const std::string enabled((std::istreambuf_iterator<char>(on)),
                                std::istreambuf_iterator<char>());
      if (enabled.find("io") == std::string::npos) {
        if (!write_file(io_root_ + "/cgroup.subtree_control", "+io")) {
          ADD_FAILURE() << "cannot enable io in " << io_root_ << "/cgroup.subtree_control";
          return false;
        }
        enabled_io_ = true;
      }
    }
    const std::string root = io_root_.empty() ? std::string(kBlkio) : io_root_;
    cgroup_ = root + "/chokepoint-test-" + std::to_string(::getpid());
    if (::mkdir(cgroup_.c_str(), 0755) != 0) {
      ADD_FAILURE() << "mkdir " << cgroup_ << " failed: " << std::strerror(errno);
      cgroup_.clear();
      return false;
    }
    const std::string file =
        io_root_.empty() ? "/blkio.throttle.write_iops_device" : std::string("/io.max");
    const std::string rule = io_root_.empty() ? device + " " + std::to_string(kWriteIops)
                                              : device + " wiops=" + std::to_string(kWriteIops);
    if (!write_file(cgroup_ + file, rule)) {
      ADD_FAILURE() << "cannot set the throttle " << rule << " in " << cgroup_ << file;
      return false;
    }
    return true;
  }

  // Moves the process (all its threads) into the throttled cgroup.
  bool add(pid_t pid) const { return write_file(cgroup_ + "/cgroup.procs", std::to_string(pid)); }

  const std::string& mount_point() const { return mount_; }

 private:
  void tear_down() {
    if (!cgroup_.empty()) {
      // Whatever is still inside (a process that outlived its owner) goes back to the root.
      const std::string root = io_root_.empty() ? std::string(kBlkio) : io_root_;
      std::ifstream procs(cgroup_ + "/cgroup.procs");
      for (std::string pid; std::getline(procs, pid);) write_file(root + "/cgroup.procs", pid);
      for (int i = 0; i < 50 && ::rmdir(cgroup_.c_str()) != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    // The io controller goes back off where the test turned it on.
    if (enabled_io_) write_file(io_root_ + "/cgroup.subtree_control", "-io");
    if (mounted_) {
      // A writer that just exited may still hold the mount busy for a moment.
      for (int i = 0; i < 50 && ::umount(mount_.c_str()) != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (!loop_.empty()) {
      auto r = run_to_exit({"-d", loop_}, "/usr/sbin/losetup", std::chrono::seconds(20));
      EXPECT_TRUE(r && r->exit_code == 0) << "losetup -d " << loop_ << " failed";
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  std::string dir_;
  std::string loop_;
  std::string mount_;
  bool mounted_ = false;
  std::string cgroup_;
  std::string io_root_;      // the v2 mount with io (io.max), or "" for v1 blkio
  bool enabled_io_ = false;  // set_up turned io on in io_root_'s subtree
};

TEST(DiskHandoff, WaitersOfAStageThreadInAThrottledFsyncAreDiskWithTheChain) {
  if (const std::string why = ThrottledDisk::missing(); !why.empty()) GTEST_SKIP() << why;
  ThrottledDisk disk;
  ASSERT_TRUE(disk.set_up());
  RecordProperty("throttle", disk.throttle());
  std::cout << "throttled with " << disk.throttle() << "\n";
  auto lab = LabProcess::start({"--scenario", "pipeline", "--stage-work", "fsync", "--handoff",
                                "semaphore", "--port", "0", "--data-dir", disk.mount_point()});
  ASSERT_TRUE(lab) << lab.error().message;
  ASSERT_TRUE(disk.add(lab->pid()));
  const std::string url = "http://127.0.0.1:" + std::to_string(lab->port()) + "/";
  auto load = Background::start("wrk", {"-t1", "-c8", "-d10s", "--timeout", "5s", url});
  ASSERT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto r = run_chokepoint({"diagnose", "--pid", std::to_string(lab->pid()), "-d", "3s",
                           "--no-stacks", "--no-probes", "--json"},
                          60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  EXPECT_EQ(j["verdict"], "disk") << j["time_split"].dump() << "\n" << j["bottlenecks"].dump(1);
  ASSERT_FALSE(j["bottlenecks"].empty()) << r.stdout_text;
  const auto& b = j["bottlenecks"][0];
  EXPECT_EQ(b["resource"], "disk") << b.dump(1);
  EXPECT_EQ(b["kind"], "fsync") << b.dump(1);
  // The evidence gives the chain: a request thread waits for the stage, which is in disk.
  bool chain_line = false;
  for (const auto& line : b["evidence"]) {
    const std::string text = line.get<std::string>();
    chain_line = chain_line || (text.find("waits for thread 'lab-stage'") != std::string::npos &&
                                text.find("which is in disk") != std::string::npos);
  }
  EXPECT_TRUE(chain_line) << b["evidence"].dump(1);
  ASSERT_TRUE(b.contains("chains")) << b.dump(1);
  ASSERT_FALSE(b["chains"].empty());
  const auto& root = b["chains"][0]["root"];
  EXPECT_EQ(root["comm"], "lab-stage") << root.dump();
  EXPECT_EQ(root["state"], "disk") << root.dump();
  // The lock rule gives the waiters' hand-off time to disk: what it keeps (semaphore waits whose
  // wakeups the window did not resolve to the stage) says so, and is below disk's share.
  for (const auto& other : j["bottlenecks"]) {
    if (other["resource"] != "lock") continue;
    EXPECT_LT(other["share"].get<double>(), b["share"].get<double>()) << other.dump(1);
    bool handed = false;
    for (const auto& line : other["evidence"]) {
      handed = handed || line.get<std::string>().find(
                             "is a hand-off, not contention (counted as "
                             "disk)") != std::string::npos;
    }
    EXPECT_TRUE(handed) << other["evidence"].dump(1);
  }
}

}  // namespace
}  // namespace chokepoint
