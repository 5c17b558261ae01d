#include "collect/procfs/ipc.h"

#include <limits>

#include "collect/procfs/text.h"

namespace chokepoint::collect::procfs {
namespace {

std::optional<int> parse_pid(std::string_view text) {
  auto v = parse_u64(text);
  if (!v || *v > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) return std::nullopt;
  return static_cast<int>(*v);
}

}  // namespace

std::optional<std::vector<SysvShmSegment>> parse_sysvipc_shm(std::string_view text) {
  const auto lines = split_lines(text);
  if (lines.empty()) return std::nullopt;
  const auto header = split_ws(lines[0]);
  if (header.size() < 7 || header[0] != "key" || header[3] != "size") return std::nullopt;
  const bool has_rss = header.size() >= 15 && header[14] == "rss";
  std::vector<SysvShmSegment> out;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto f = split_ws(lines[i]);
    if (f.empty()) continue;
    if (f.size() < 7) return std::nullopt;
    SysvShmSegment s;
    auto key = parse_i64(f[0]);
    auto shmid = parse_u64(f[1]);
    auto size = parse_u64(f[3]);
    auto cpid = parse_pid(f[4]);
    auto lpid = parse_pid(f[5]);
    auto nattch = parse_u64(f[6]);
    if (!key || !shmid || !size || !cpid || !lpid || !nattch) return std::nullopt;
    s.key = *key;
    s.shmid = *shmid;
    s.size_bytes = *size;
    s.creator_pid = *cpid;
    s.last_pid = *lpid;
    s.attached = *nattch;
    if (has_rss && f.size() >= 15) s.rss_bytes = parse_u64(f[14]);
    out.push_back(s);
  }
  return out;
}

}  // namespace chokepoint::collect::procfs
