#pragma once
// Errors as values. Result<T> is shaped like std::expected (which g++ 12 lacks): it holds either a
// T or an Error. Use it for anything the OS or the user can refuse; keep exceptions for the one
// fatal user error type (FatalError), which only app::run catches.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace chokepoint::util {

// What went wrong, and what the user can do about it. Both are printed as
//   error: <message>
//   hint: <hint>
struct Error {
  std::string message;
  std::string hint;     // empty when there is nothing useful to suggest
  int errno_value = 0;  // the errno behind it, 0 when none
};

// Builds an Error from the current errno: "<what>: <strerror(errno)>".
Error errno_error(const std::string& what, std::string hint = {});
Error errno_error(const std::string& what, int errno_value, std::string hint = {});

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!has_value());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace chokepoint::util
