// The first byte picks the parser, the rest is the reply. Parsers never crash, never keep more
// than their caps, and every error carries a hint.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collect/probes/stats_text.h"

using namespace chokepoint::collect::probes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      const RedisInfo info = parse_redis_info(text);
      if (info.fields.size() > kMaxFields || info.commands.size() > kMaxFields) std::abort();
      for (const auto& [name, value] : info.fields) {
        (void)info.count(name);
        (void)info.number(name);
      }
      break;
    }
    case 1: {
      auto s = parse_nginx_status(text);
      if (!s && s.error().hint.empty()) std::abort();
      break;
    }
    case 2: {
      auto rows = parse_haproxy_csv(text);
      if (!rows && rows.error().hint.empty()) std::abort();
      if (rows && rows->size() > kMaxRows) std::abort();
      break;
    }
  }
  return 0;
}
