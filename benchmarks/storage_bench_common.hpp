// What the storage benchmarks share beyond bench_common.hpp: key and value
// generation. --dir=PATH puts the scratch directory under PATH (default /tmp).
#pragma once

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "bench_common.hpp"
#include "nodenomad/file_system.hpp"
#include "nodenomad/rng.hpp"

namespace nodenomad::bench {

// Key i as exactly `bytes` bytes ("k000...0042"), so keys sort like numbers.
inline std::string make_key(std::uint64_t i, std::size_t bytes) {
  std::string key = fmt::format("k{:0{}}", i, bytes - 1);
  key.resize(bytes);
  return key;
}

inline std::string make_value(Rng& rng, std::size_t bytes) {
  std::string value(bytes, '\0');
  for (char& c : value) c = static_cast<char>('a' + rng.uniform(26));
  return value;
}

// 0 .. n-1 in a seeded random order.
inline std::vector<std::uint32_t> shuffled(std::uint64_t n, Rng& rng) {
  std::vector<std::uint32_t> order(n);
  for (std::uint64_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  for (std::uint64_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.uniform(i)]);
  return order;
}

inline void require(bool condition, std::string_view what) {
  if (!condition) {
    std::fprintf(stderr, "benchmark failed: %.*s\n", static_cast<int>(what.size()), what.data());
    std::exit(1);
  }
}

}  // namespace nodenomad::bench
