#pragma once
// A shared library opened when it is first needed (dlopen), instead of at exec (DT_NEEDED).
//
// Why: libpq, libcurl, libmemcached and libmicrohttpd pull in 33 more libraries (gnutls, krb5,
// ldap, ssh2, ...) that only one probe or the agent's exporter uses. Loading 53 libraries at
// every start costs ~1,400 system calls and page faults before main(); beside a CPU-saturated
// target each of them is a point where a nice-0 process waits its turn for a core, and loading
// alone took 4.5-6.5 s (20 libraries: 1.8-3.4 s; docs/benchmarks.md). The ones every run needs
// stay linked.
//
// A library that cannot be opened is an Error naming it, with the caller's hint (which package
// to install); the run goes on without what needed it. Opened libraries stay loaded until the
// process ends (never dlclose: curl and gnutls keep global state).
//
// Thread-safety: open() and symbol() are safe from any thread (dlopen/dlsym are).

#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::util {

class SharedLibrary {
 public:
  // dlopen(soname, RTLD_NOW | RTLD_LOCAL). soname is the runtime name ("libpq.so.5"); `needed_by`
  // says what wants it ("the PostgreSQL probe"), `hint` what to do when it is missing.
  static Result<SharedLibrary> open(const std::string& soname, const std::string& needed_by,
                                    const std::string& hint);

  // Sets fn to the library's function `name`, or an Error naming both.
  template <class F>
  Result<void> bind(F*& fn, const char* name) const {
    Result<void*> s = symbol(name);
    if (!s) return s.error();
    fn = reinterpret_cast<F*>(*s);  // NOLINT: dlsym's result is the function's address
    return {};
  }

  // Opens soname and fills a table of its functions: bind_all(lib, api) binds each one
  // (lib.bind(api.fn, "name")) and returns their results in a std::vector<Result<void>>; the
  // first failure is the error. Meant for a function-local static, so that a library is opened
  // once per process and a missing one gives the same error every time.
  template <class Api, class BindAll>
  static Result<Api> load(const std::string& soname, const std::string& needed_by,
                          const std::string& hint, BindAll bind_all) {
    Result<SharedLibrary> lib = open(soname, needed_by, hint);
    if (!lib) return lib.error();
    Api api{};
    for (const Result<void>& bound : bind_all(*lib, api)) {
      if (!bound) return bound.error();
    }
    return api;
  }

  const std::string& soname() const { return soname_; }

 private:
  SharedLibrary(void* handle, std::string soname, std::string hint)
      : handle_(handle), soname_(std::move(soname)), hint_(std::move(hint)) {}
  Result<void*> symbol(const char* name) const;

  void* handle_;
  std::string soname_;
  std::string hint_;
};

}  // namespace chokepoint::util
