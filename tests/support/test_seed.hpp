// The seed of a randomized test, shared by every part's tests.
//
// NODENOMAD_SEED (decimal or 0x-hex) replays a run; without it the test's
// own fixed default is used. The seed is printed before the test uses it,
// so a failure's output always says how to replay it. A malformed
// NODENOMAD_SEED stops the test with a message rather than silently running
// some other seed.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace nodenomad::test_support {

inline std::uint64_t test_seed(std::string_view test_name, std::uint64_t fallback) {
  std::uint64_t seed = fallback;
  if (const char* env = std::getenv("NODENOMAD_SEED"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    errno = 0;
    seed = std::strtoull(env, &end, 0);
    if (errno != 0 || end == env || *end != '\0') {
      std::fprintf(stderr,
                   "NODENOMAD_SEED=\"%s\" is not a seed: give an unsigned 64-bit integer, "
                   "decimal or 0x-hex\n",
                   env);
      std::abort();
    }
  }
  std::printf("[%.*s] seed %llu (replay with NODENOMAD_SEED=%llu)\n",
              static_cast<int>(test_name.size()), test_name.data(),
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

}  // namespace nodenomad::test_support
