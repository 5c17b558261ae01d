#pragma once
// A C library's object owned by a std::unique_ptr that frees it with the library's own function:
// `using Conn = util::Owned<PGconn, PQfinish>;`. The function's return value (bpf_link__destroy
// returns an int) is ignored.

#include <memory>

namespace chokepoint::util {

template <auto Free>
struct FreeWith {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <class T, auto Free>
using Owned = std::unique_ptr<T, FreeWith<Free>>;

}  // namespace chokepoint::util
