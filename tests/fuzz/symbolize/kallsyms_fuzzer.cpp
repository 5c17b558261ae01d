// Fuzzes parse_kallsyms (/proc/kallsyms). Input: the file's text.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "symbolize/parsers.h"

using namespace chokepoint::symbolize;

static void check(bool ok) {
  if (!ok) std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const KernelSymbols k = parse_kallsyms(text);
  if (k.addresses_hidden) check(k.symbols.empty());
  for (std::size_t i = 0; i < k.symbols.size(); ++i) {
    const KernelSymbol& s = k.symbols[i];
    check(s.address != 0 && !s.name.empty());
    check(i == 0 || k.symbols[i - 1].address < s.address);
    check(k.find(s.address) == &s);
  }
  return 0;
}
