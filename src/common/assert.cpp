#include "nodenomad/assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace nodenomad::detail {

void assert_failed(const char* condition, const char* file, int line,
                   const std::string& message) noexcept {
  std::fprintf(stderr, "%s:%d: assertion `%s` failed%s%s\n", file, line, condition,
               message.empty() ? "" : ": ", message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace nodenomad::detail
