#include "util/shared_library.h"

#include <dlfcn.h>
#include <fmt/format.h>

namespace chokepoint::util {

Result<SharedLibrary> SharedLibrary::open(const std::string& soname, const std::string& needed_by,
                                          const std::string& hint) {
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Error{fmt::format("{} needs {}, which cannot be loaded: {}", needed_by, soname,
                             why != nullptr ? why : "unknown reason"),
                 hint};
  }
  return SharedLibrary(handle, soname, hint);
}

Result<void*> SharedLibrary::symbol(const char* name) const {
  dlerror();  // clear an earlier error
  void* s = dlsym(handle_, name);
  if (s == nullptr) {
    const char* why = dlerror();
    return Error{fmt::format("{} has no function {}: {}", soname_, name,
                             why != nullptr ? why : "its address is null"),
                 hint_};
  }
  return s;
}

}  // namespace chokepoint::util
