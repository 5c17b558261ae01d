#include "support/spawn.h"

#include <fcntl.h>
#include <spawn.h>

extern char** environ;

namespace chokepoint::test_support {

util::Result<pid_t> spawn_process(const std::vector<std::string>& argv, int stdout_fd,
                                  int stderr_fd) {
  if (argv.empty()) return util::Error{"spawn_process: no program given", "", EINVAL};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const int targets[2] = {1, 2};
  const int sources[2] = {stdout_fd, stderr_fd};
  for (int i = 0; i < 2; ++i) {
    if (sources[i] < 0) {
      posix_spawn_file_actions_addopen(&actions, targets[i], "/dev/null", O_WRONLY, 0);
    } else {
      // dup2 clears FD_CLOEXEC on the child's copy; the parent's stays as it was.
      posix_spawn_file_actions_adddup2(&actions, sources[i], targets[i]);
    }
  }
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return util::errno_error("posix_spawn " + argv[0], rc, "");
  return pid;
}

}  // namespace chokepoint::test_support
