// NN_ASSERT: invariants that must never break, checked in every build.
//
// A failed assertion is a programmer error, not an operating error: it prints
// "file:line: assertion `cond` failed: message" to stderr and aborts. It is
// never compiled out (TigerBeetle's rule: assertions are documentation that
// runs). The message arguments are streamed with operator<< and evaluated only
// on failure, so they cost nothing on the path that holds.
#pragma once

#include <sstream>
#include <string>

namespace nodenomad::detail {

[[noreturn]] void assert_failed(const char* condition, const char* file, int line,
                                const std::string& message) noexcept;

template <typename... Parts>
std::string concat_message(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace nodenomad::detail

#define NN_ASSERT(condition, ...)                                                  \
  do {                                                                             \
    if (!(condition)) [[unlikely]] {                                               \
      ::nodenomad::detail::assert_failed(                                          \
          #condition, __FILE__, __LINE__,                                          \
          ::nodenomad::detail::concat_message("" __VA_OPT__(, ) __VA_ARGS__));     \
    }                                                                              \
  } while (0)

// Marks a branch that must be unreachable.
#define NN_UNREACHABLE(...) NN_ASSERT(false, "unreachable" __VA_OPT__(, ": ", ) __VA_ARGS__)
